//! Django's `session_data` format, byte for byte.
//!
//! Django stores a session as `signing.dumps(data, salt=..., compress=True)`:
//!
//! ```text
//! [.]base64url(json or zlib(json)) ":" base62(unix time) ":" base64url(hmac_sha256)
//! ```
//!
//! The HMAC key is `sha256(salt + "signer" + SECRET_KEY)`; the JSON is Python's compact,
//! ASCII-only form (see [`crate::pyjson`]); zlib is used only when it saves at least two bytes,
//! and a leading `.` says so. Reading checks the signature in constant time against the secret
//! key, then each fallback key, as Django's `Signer.unsign` does.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use flate2::read::ZlibDecoder;
use flate2::Compression;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::io::Read;
use std::sync::Arc;
use subtle::ConstantTimeEq;

use crate::Data;

/// The salt Django's database, cache and file engines sign `session_data` with.
pub const SESSION_STORE_SALT: &str = "django.contrib.sessions.SessionStore";
/// The salt of Django's `signed_cookies` engine.
pub const SIGNED_COOKIES_SALT: &str = "django.contrib.sessions.backends.signed_cookies";

/// Largest decompressed payload accepted, so a small hostile row cannot inflate without bound.
const MAX_DECOMPRESSED: u64 = 64 * 1024 * 1024;

/// Why a `session_data` string could not be read.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The signature matched neither `SECRET_KEY` nor any fallback: tampered, or signed with
    /// another key.
    #[error("bad signature: session data was tampered with or signed with another SECRET_KEY")]
    BadSignature,
    /// The string does not have the `payload:timestamp:signature` shape.
    #[error("malformed session data: {0}")]
    Malformed(&'static str),
    /// The payload is not valid base64url.
    #[error("session data payload is not base64url")]
    Base64(#[source] base64::DecodeError),
    /// The compressed payload did not inflate.
    #[error("session data payload did not decompress")]
    Zlib(#[source] std::io::Error),
    /// The payload is not a JSON object.
    #[error("session data is not a JSON object")]
    Json(#[source] serde_json::Error),
}

/// A decoded `session_data` value: the map and when it was signed.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    /// The session's key/value map.
    pub data: Data,
    /// Unix time (seconds) at which it was signed.
    pub timestamp: i64,
}

/// Signs and verifies session data with a secret key and its fallbacks.
///
/// The HMAC keys are derived once here, not per call: Django hashes `salt + secret` on every
/// signature, which is most of its ~25 µs per decode.
#[derive(Clone)]
pub struct Codec {
    salt: String,
    signing_key: [u8; 32],
    fallback_keys: Vec<[u8; 32]>,
}

impl std::fmt::Debug for Codec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        f.debug_struct("Codec")
            .field("salt", &self.salt)
            .field("fallback_keys", &self.fallback_keys.len())
            .finish_non_exhaustive()
    }
}

impl Codec {
    /// A codec for the database/cache/file engines' `session_data` (Django's
    /// `SessionStore` salt).
    ///
    /// # Examples
    /// ```
    /// use sesame::codec::Codec;
    /// let codec = Codec::new("test-secret-key-1234567890", &[]);
    /// let data = serde_json::json!({"foo": "bar"}).as_object().unwrap().clone();
    /// assert_eq!(
    ///     codec.encode_at(&data, 1_700_000_000),
    ///     "eyJmb28iOiJiYXIifQ:1r31eq:FJrdKYOq3Of399GRyTTI_ulmg2JvgWicIf-1mNTiHo8"
    /// );
    /// ```
    pub fn new(secret_key: &str, fallbacks: &[String]) -> Self {
        Self::with_salt(SESSION_STORE_SALT, secret_key, fallbacks)
    }

    /// A codec with another salt, such as [`SIGNED_COOKIES_SALT`].
    pub fn with_salt(salt: &str, secret_key: &str, fallbacks: &[String]) -> Self {
        let derive = |secret: &str| -> [u8; 32] {
            let mut h = Sha256::new();
            h.update(salt.as_bytes());
            h.update(b"signer");
            h.update(secret.as_bytes());
            h.finalize().into()
        };
        Self {
            salt: salt.to_owned(),
            signing_key: derive(secret_key),
            fallback_keys: fallbacks.iter().map(|k| derive(k)).collect(),
        }
    }

    /// Encode `data` signed now.
    pub fn encode(&self, data: &Data) -> String {
        self.encode_at(data, chrono::Utc::now().timestamp())
    }

    /// Encode `data` as if signed at `unix_time` (tests and reproducible vectors).
    pub fn encode_at(&self, data: &Data, unix_time: i64) -> String {
        let json = crate::pyjson::to_vec(data);
        let mut payload = String::with_capacity(json.len() * 4 / 3 + 64);
        match compress_if_smaller(&json) {
            Some(z) => {
                payload.push('.');
                URL_SAFE_NO_PAD.encode_string(z, &mut payload);
            }
            None => URL_SAFE_NO_PAD.encode_string(&json, &mut payload),
        }
        payload.push(':');
        payload.push_str(&base62(unix_time));
        let sig = sign(&self.signing_key, payload.as_bytes());
        payload.push(':');
        URL_SAFE_NO_PAD.encode_string(sig, &mut payload);
        payload
    }

    /// Verify and decode a `session_data` string.
    ///
    /// # Errors
    /// [`DecodeError::BadSignature`] when no key verifies it; other variants when it is not
    /// Django's format. Callers reading a session treat every error as an empty session, as
    /// Django does.
    ///
    /// # Security
    /// Signatures are compared in constant time.
    pub fn decode(&self, session_data: &str) -> Result<Decoded, DecodeError> {
        let (signed, sig) = session_data.rsplit_once(':').ok_or(DecodeError::Malformed("no signature"))?;
        let given = URL_SAFE_NO_PAD.decode(sig).map_err(|_| DecodeError::BadSignature)?;
        let verified = std::iter::once(&self.signing_key)
            .chain(&self.fallback_keys)
            .any(|key| bool::from(sign(key, signed.as_bytes()).as_slice().ct_eq(&given)));
        if !verified {
            return Err(DecodeError::BadSignature);
        }
        let (payload, ts) = signed.rsplit_once(':').ok_or(DecodeError::Malformed("no timestamp"))?;
        let timestamp = unbase62(ts).ok_or(DecodeError::Malformed("bad timestamp"))?;
        let (compressed, b64) = match payload.strip_prefix('.') {
            Some(rest) => (true, rest),
            None => (false, payload),
        };
        let raw = URL_SAFE_NO_PAD.decode(b64).map_err(DecodeError::Base64)?;
        let json = if compressed {
            let mut out = Vec::with_capacity(raw.len() * 4);
            ZlibDecoder::new(&raw[..]).take(MAX_DECOMPRESSED).read_to_end(&mut out).map_err(DecodeError::Zlib)?;
            out
        } else {
            raw
        };
        // Django decodes the JSON bytes as latin-1; its own writer only ever emits ASCII, and
        // serde_json reads that (and UTF-8) the same way.
        match crate::pyjson::parse(&json).map_err(DecodeError::Json)? {
            Value::Object(data) => Ok(Decoded { data, timestamp }),
            _ => Err(DecodeError::Malformed("payload is not a JSON object")),
        }
    }
}

/// Remembers the last decoded `session_data` of recently read sessions, so reading a session
/// that has not changed since its last read skips the HMAC check and the JSON parse.
///
/// A store may keep a note of its own beside each entry (`N`): the SQLite store notes when and
/// until when the row was read, to answer an unchanged database from the cache alone.
///
/// # Security
/// An entry is used only when the stored bytes are identical to bytes that were verified
/// before under the same keys: the result is the one decoding would give.
#[derive(Debug, Default)]
pub struct DecodeCache<N = ()> {
    // parking_lot: held for a hash lookup and a clone, never across an await. foldhash rather
    // than SipHash: the keys are the server's own random session keys (only a stored,
    // verified record is ever inserted), so there is no flooding to defend against, and the
    // lookup runs on every session read.
    entries: parking_lot::Mutex<std::collections::HashMap<String, Cached<N>, foldhash::fast::RandomState>>,
}

#[derive(Debug)]
struct Cached<N> {
    raw: String,
    data: Arc<Data>,
    note: N,
}

/// Entries kept before the cache starts over (about 5 MB for typical sessions).
const DECODE_CACHE_ENTRIES: usize = 10_000;

impl DecodeCache {
    /// Decode `raw`, the stored data of session `key`, using the cache when it is unchanged.
    /// A hit returns the same shared map: no copy of the data per read.
    ///
    /// # Errors
    /// As [`Codec::decode`]; failures are not cached.
    pub fn decode(&self, codec: &Codec, key: &str, raw: &str) -> Result<Arc<Data>, DecodeError> {
        self.decode_noting(codec, key, raw, ())
    }
}

impl<N> DecodeCache<N> {
    /// As [`DecodeCache::decode`], keeping `note` beside the entry (in place of the note an
    /// entry with the same bytes had).
    pub(crate) fn decode_noting(&self, codec: &Codec, key: &str, raw: &str, note: N) -> Result<Arc<Data>, DecodeError> {
        if let Some(hit) = self.entries.lock().get_mut(key) {
            if hit.raw == raw {
                hit.note = note;
                return Ok(hit.data.clone());
            }
        }
        let data = Arc::new(codec.decode(raw)?.data);
        let mut entries = self.entries.lock();
        if entries.len() >= DECODE_CACHE_ENTRIES {
            entries.clear();
        }
        entries.insert(key.to_owned(), Cached { raw: raw.to_owned(), data: data.clone(), note });
        Ok(data)
    }

    /// `f` of the entry of `key` (its stored bytes, decoded map and note), if there is one.
    pub(crate) fn peek<R>(&self, key: &str, f: impl FnOnce(&str, &Arc<Data>, &N) -> Option<R>) -> Option<R> {
        self.entries.lock().get(key).and_then(|hit| f(&hit.raw, &hit.data, &hit.note))
    }

    /// Forget `key` (after a delete).
    pub fn forget(&self, key: &str) {
        self.entries.lock().remove(key);
    }
}

fn sign(key: &[u8; 32], message: &[u8]) -> [u8; 32] {
    // HMAC accepts keys of any length; a 32-byte key cannot be rejected.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(message);
    mac.finalize().into_bytes().into()
}

/// zlib at Python's default level, kept only if it saves at least two bytes (Django's rule:
/// `len(compressed) < len(data) - 1`).
///
/// The deflate state (about 270 KB) is kept per thread and reset between calls. Allocating it
/// per call showed up in profiles of the server as page faults: the allocator handed the pages
/// back and every encode faulted them in again. Same parameters as Python's `zlib.compress`
/// (level 6, 15-bit window, memLevel 8), so the same bytes (checked by the Django vectors).
fn compress_if_smaller(json: &[u8]) -> Option<Vec<u8>> {
    use flate2::{Compress, FlushCompress, Status};
    thread_local! {
        static DEFLATE: std::cell::RefCell<Compress> =
            std::cell::RefCell::new(Compress::new(Compression::new(6), true));
    }
    if json.len() < 16 {
        // zlib's header and checksum alone are 6 bytes; short JSON never shrinks enough.
        return None;
    }
    DEFLATE.with(|cell| {
        let mut z = cell.borrow_mut();
        z.reset();
        let mut out = Vec::with_capacity(json.len());
        // Each round either finishes or grows the buffer; the bound only guards against a
        // zlib that stops making progress.
        for _ in 0..64 {
            let consumed = usize::try_from(z.total_in()).ok()?;
            match z.compress_vec(&json[consumed..], &mut out, FlushCompress::Finish).ok()? {
                Status::StreamEnd => break,
                _ if out.len() == out.capacity() => {
                    // Already no smaller than the input: not worth keeping.
                    if out.len() + 1 >= json.len() {
                        return None;
                    }
                    out.reserve(json.len());
                }
                _ => {}
            }
        }
        (z.total_in() == json.len() as u64 && out.len() + 1 < json.len()).then_some(out)
    })
}

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

fn base62(mut n: i64) -> String {
    let negative = n < 0;
    if n == 0 {
        return "0".into();
    }
    let mut out = Vec::new();
    while n != 0 {
        out.push(BASE62[(n % 62).unsigned_abs() as usize]);
        n /= 62;
    }
    if negative {
        out.push(b'-');
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

fn unbase62(s: &str) -> Option<i64> {
    let (negative, digits) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    if digits.is_empty() {
        return None;
    }
    let mut n: i64 = 0;
    for b in digits.bytes() {
        let d = BASE62.iter().position(|&c| c == b)? as i64;
        n = n.checked_mul(62)?.checked_add(d)?;
    }
    Some(if negative { -n } else { n })
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::write::ZlibEncoder;
    use serde_json::json;
    use std::io::Write;

    fn data(v: Value) -> Data {
        v.as_object().cloned().unwrap()
    }

    const VECTOR: &str = "eyJmb28iOiJiYXIifQ:1r31eq:FJrdKYOq3Of399GRyTTI_ulmg2JvgWicIf-1mNTiHo8";

    #[test]
    fn known_vector() {
        let codec = Codec::new("test-secret-key-1234567890", &[]);
        assert_eq!(codec.encode_at(&data(json!({"foo": "bar"})), 1_700_000_000), VECTOR);
        let d = codec.decode(VECTOR).unwrap();
        assert_eq!(d.data, data(json!({"foo": "bar"})));
        assert_eq!(d.timestamp, 1_700_000_000);
    }

    #[test]
    fn the_decode_cache_only_answers_for_identical_bytes() {
        let codec = Codec::new("k", &[]);
        let cache = DecodeCache::default();
        let a = codec.encode_at(&data(json!({"n": 1})), 1);
        let b = codec.encode_at(&data(json!({"n": 2})), 1);
        let first = cache.decode(&codec, "key", &a).unwrap();
        assert_eq!(*first, data(json!({"n": 1})));
        let again = cache.decode(&codec, "key", &a).unwrap();
        assert!(Arc::ptr_eq(&first, &again), "a hit shares the decoded map");
        assert_eq!(*cache.decode(&codec, "key", &b).unwrap(), data(json!({"n": 2})));
        let mut forged = b.clone();
        forged.push('x');
        assert!(cache.decode(&codec, "key", &forged).is_err());
        let other = Codec::new("other", &[]);
        assert!(cache.decode(&other, "key2", &b).is_err(), "a key never verified is checked");
    }

    #[test]
    fn base62_round_trip() {
        assert_eq!(base62(1_700_000_000), "1r31eq");
        for n in [0, 1, 61, 62, 3843, i64::MAX, -5] {
            assert_eq!(unbase62(&base62(n)), Some(n));
        }
        assert_eq!(unbase62("!"), None);
    }

    #[test]
    fn fallback_keys_verify_and_others_do_not() {
        let old = Codec::new("old", &[]);
        let encoded = old.encode(&data(json!({"a": 1})));
        let new = Codec::new("new", &["other".into(), "old".into()]);
        assert_eq!(new.decode(&encoded).unwrap().data, data(json!({"a": 1})));
        let unrelated = Codec::new("new", &[]);
        assert!(matches!(unrelated.decode(&encoded), Err(DecodeError::BadSignature)));
    }

    #[test]
    fn tampering_is_detected() {
        let codec = Codec::new("k", &[]);
        let encoded = codec.encode(&data(json!({"user": "alice"})));
        let forged = codec.encode(&data(json!({"user": "admin"})));
        let (forged_payload, _) = forged.split_once(':').unwrap();
        let (_, rest) = encoded.split_once(':').unwrap();
        let tampered = format!("{forged_payload}:{rest}");
        assert!(matches!(codec.decode(&tampered), Err(DecodeError::BadSignature)));
        for junk in ["", "abc", "a:b", "::", "x:y:z"] {
            assert!(codec.decode(junk).is_err(), "{junk:?}");
        }
    }

    #[test]
    fn round_trips_nested_unicode_and_large_values() {
        let codec = Codec::new("k", &[]);
        let big = "x".repeat(100_000);
        for v in [
            json!({}),
            json!({"n": {"deep": [1, 2.5, {"x": null, "y": true}]}}),
            json!({"name": "Zoë 中文 😀 \u{2028}"}),
            json!({"big": big}),
        ] {
            let d = data(v);
            let enc = codec.encode(&d);
            assert!(enc.is_ascii());
            assert_eq!(codec.decode(&enc).unwrap().data, d);
        }
        let enc = codec.encode(&data(json!({"big": "x".repeat(100_000)})));
        assert!(enc.starts_with('.'), "large repetitive data is compressed");
        assert!(enc.len() < 1000);
    }

    #[test]
    fn a_zlib_bomb_is_refused() {
        let codec = Codec::new("k", &[]);
        let json = format!("{{\"a\":\"{}\"}}", "x".repeat(70 * 1024 * 1024));
        let mut enc = ZlibEncoder::new(Vec::new(), Compression::new(9));
        enc.write_all(json.as_bytes()).unwrap();
        let z = enc.finish().unwrap();
        let payload = format!(".{}:{}", URL_SAFE_NO_PAD.encode(z), base62(1));
        let sig = URL_SAFE_NO_PAD.encode(sign(&codec.signing_key, payload.as_bytes()));
        assert!(codec.decode(&format!("{payload}:{sig}")).is_err());
    }
}
