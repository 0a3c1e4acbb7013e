//! Session keys: 32 characters of `[a-z0-9]` from a CSPRNG, as Django's
//! `get_random_string(32, VALID_KEY_CHARS)`.

use rand::Rng;

/// Characters a generated key is drawn from (Django's `VALID_KEY_CHARS`).
pub const VALID_KEY_CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
/// Length of a generated key.
pub const KEY_LENGTH: usize = 32;
/// Longest key the `django_session.session_key varchar(40)` column holds.
pub const MAX_KEY_LENGTH: usize = 40;

/// A new random session key.
///
/// # Security
/// `rand::rng()` is ChaCha12 reseeded from the operating system: a CSPRNG. Each character is
/// drawn uniformly (no modulo bias), giving 32 × log2(36) ≈ 165 bits.
pub fn generate() -> String {
    let mut rng = rand::rng();
    (0..KEY_LENGTH).map(|_| VALID_KEY_CHARS[rng.random_range(0..VALID_KEY_CHARS.len())] as char).collect()
}

/// Whether a key sent by a client is worth looking up.
///
/// Django accepts any string of eight or more characters; Sesame also requires the character
/// set a store can hold safely (the file engine builds paths from keys), so junk never reaches
/// a store.
pub fn is_valid(key: &str) -> bool {
    (8..=MAX_KEY_LENGTH).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

/// The first characters of a key, for logs: a full key is a bearer credential.
pub fn redact(key: &str) -> String {
    let head: String = key.chars().take(6).collect();
    format!("{head}…")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_are_valid_and_distinct() {
        let keys: std::collections::HashSet<String> = (0..1000).map(|_| generate()).collect();
        assert_eq!(keys.len(), 1000);
        for k in &keys {
            assert_eq!(k.len(), 32);
            assert!(is_valid(k));
        }
    }

    #[test]
    fn validation() {
        assert!(!is_valid("short"));
        assert!(!is_valid(&"a".repeat(41)));
        assert!(!is_valid("../../etc/passwd-xx"));
        assert!(!is_valid("ABCDEFGHIJ"));
        assert!(is_valid("abcdefgh"));
    }

    #[test]
    fn redaction_hides_most_of_the_key() {
        assert_eq!(redact("abcdefghijklmnop"), "abcdef…");
    }
}
