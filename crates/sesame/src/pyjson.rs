//! JSON text exactly as Python's `json.dumps(obj, separators=(",", ":"))` writes it.
//!
//! Django signs the *bytes* of its JSON, so a Rust writer has to produce the very same bytes or
//! every session it writes looks different from Django's (and signatures of re-encoded data would
//! not match known vectors). Three things differ from serde_json's compact output:
//! - `ensure_ascii`: every character outside `' '..='~'` is escaped as `\uXXXX` (lowercase hex,
//!   surrogate pairs above the BMP), DEL included;
//! - floats use Python's `repr`: exponent form below 1e-4 and from 1e16 on, written `1e+16`,
//!   `1.5e-05`;
//! - Python writes `NaN` / `Infinity` where JSON has no such values; see [`parse`].

use serde_json::ser::Formatter;
use serde_json::Value;
use std::io::{self, Write};

/// Serialise `value` the way Python's `json.dumps(value, separators=(",", ":"))` does.
///
/// Generic so that a session's map is written as it is, without first being cloned into a
/// [`Value::Object`] (a copy of every key and value on every save).
///
/// Meant for a [`Value`] or a session's map (`Data`), which hold only string keys and finite
/// numbers. Any other `Serialize` type follows serde_json where the two differ: a float NaN or
/// infinity is written `null` (Python writes `NaN`).
///
/// # Panics
/// If `value` holds a map whose keys are not strings (a `Value` or `Data` never does).
pub fn to_vec<T: serde::Serialize + ?Sized>(value: &T) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    let mut ser = serde_json::Serializer::with_formatter(&mut out, PythonFormatter);
    // Writing a JSON value or map into a Vec cannot fail: there is no I/O and every key is a
    // string.
    value.serialize(&mut ser).expect("serialising a JSON value into memory");
    out
}

/// Parse JSON written by Python, which may hold the non-standard `NaN`, `Infinity` and
/// `-Infinity`.
///
/// serde_json rejects those tokens; they become `null` here (JSON has nothing closer), so a
/// Django session holding one still loads instead of reading as empty.
pub fn parse(bytes: &[u8]) -> serde_json::Result<Value> {
    match serde_json::from_slice(bytes) {
        Ok(v) => Ok(v),
        Err(e) => match replace_python_constants(bytes) {
            Some(fixed) => serde_json::from_slice(&fixed),
            None => Err(e),
        },
    }
}

/// Replace `NaN`, `Infinity` and `-Infinity` outside strings with `null`; `None` if there were
/// none, so the original error is the one reported.
fn replace_python_constants(bytes: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut in_string = false;
    let mut escaped = false;
    let mut changed = false;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if in_string {
            out.push(b);
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            i += 1;
            continue;
        }
        let rest = &bytes[i..];
        let token: Option<usize> =
            [&b"-Infinity"[..], b"Infinity", b"NaN"].iter().find(|t| rest.starts_with(t)).map(|t| t.len());
        if let Some(len) = token {
            out.extend_from_slice(b"null");
            changed = true;
            i += len;
            continue;
        }
        if b == b'"' {
            in_string = true;
        }
        out.push(b);
        i += 1;
    }
    changed.then_some(out)
}

struct PythonFormatter;

impl Formatter for PythonFormatter {
    fn write_string_fragment<W: ?Sized + Write>(&mut self, w: &mut W, fragment: &str) -> io::Result<()> {
        let mut start = 0;
        for (i, ch) in fragment.char_indices() {
            if (' '..='~').contains(&ch) {
                continue;
            }
            w.write_all(&fragment.as_bytes()[start..i])?;
            let mut units = [0u16; 2];
            for unit in ch.encode_utf16(&mut units) {
                write!(w, "\\u{unit:04x}")?;
            }
            start = i + ch.len_utf8();
        }
        w.write_all(&fragment.as_bytes()[start..])
    }

    fn write_f64<W: ?Sized + Write>(&mut self, w: &mut W, value: f64) -> io::Result<()> {
        w.write_all(python_float_repr(value).as_bytes())
    }

    fn write_f32<W: ?Sized + Write>(&mut self, w: &mut W, value: f32) -> io::Result<()> {
        self.write_f64(w, f64::from(value))
    }
}

/// Python's `repr(float)`: the shortest round-tripping digits (as ryu finds them), laid out
/// fixed when the decimal exponent is in `-4..16`, else as `d.ddde+XX`.
pub(crate) fn python_float_repr(value: f64) -> String {
    if value.is_nan() {
        return "NaN".into();
    }
    if value.is_infinite() {
        return if value > 0.0 { "Infinity".into() } else { "-Infinity".into() };
    }
    let mut buf = ryu::Buffer::new();
    let shortest = buf.format_finite(value);
    let (negative, body) = match shortest.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, shortest),
    };
    // Split ryu's output into its significant digits and the decimal exponent of the first one.
    let (mantissa, exp_part) = match body.find(['e', 'E']) {
        Some(pos) => (&body[..pos], body[pos + 1..].parse::<i32>().unwrap_or(0)),
        None => (body, 0),
    };
    let (int_part, frac_part) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let all: String = format!("{int_part}{frac_part}");
    let leading_zeros = all.len() - all.trim_start_matches('0').len();
    let digits = all.trim_start_matches('0').trim_end_matches('0');
    let mut out = String::new();
    if negative {
        out.push('-');
    }
    if digits.is_empty() {
        out.push_str("0.0");
        return out;
    }
    // Position of the decimal point relative to the start of `digits`.
    let decpt = int_part.len() as i32 - leading_zeros as i32 + exp_part;
    let exp10 = decpt - 1;
    if (-4..16).contains(&exp10) {
        if decpt <= 0 {
            out.push_str("0.");
            out.extend(std::iter::repeat_n('0', (-decpt) as usize));
            out.push_str(digits);
        } else if decpt as usize >= digits.len() {
            out.push_str(digits);
            out.extend(std::iter::repeat_n('0', decpt as usize - digits.len()));
            out.push_str(".0");
        } else {
            let (a, b) = digits.split_at(decpt as usize);
            out.push_str(a);
            out.push('.');
            out.push_str(b);
        }
    } else {
        let (first, rest) = digits.split_at(1);
        out.push_str(first);
        if !rest.is_empty() {
            out.push('.');
            out.push_str(rest);
        }
        out.push('e');
        out.push(if exp10 < 0 { '-' } else { '+' });
        out.push_str(&format!("{:02}", exp10.abs()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn floats_follow_python_repr() {
        for (v, expected) in [
            (0.1, "0.1"),
            (1.0, "1.0"),
            (-0.0, "-0.0"),
            (1e16, "1e+16"),
            (1.5e-5, "1.5e-05"),
            (0.0001, "0.0001"),
            (123456789.123, "123456789.123"),
            (1e300, "1e+300"),
            (5e-324, "5e-324"),
            (9999999999999998.0, "9999999999999998.0"),
            (1234.5, "1234.5"),
        ] {
            assert_eq!(python_float_repr(v), expected, "{v}");
        }
    }

    #[test]
    fn strings_are_ascii_escaped_like_python() {
        let v = json!({"k": "é中😀\u{7f}\n\t\u{0}\"\\/"});
        assert_eq!(String::from_utf8(to_vec(&v)).unwrap(), r#"{"k":"\u00e9\u4e2d\ud83d\ude00\u007f\n\t\u0000\"\\/"}"#);
    }

    #[test]
    fn compact_separators_and_order_kept() {
        let v: Value = serde_json::from_str(r#"{"z": 1, "a": [1, 2, {"b": null}]}"#).unwrap();
        assert_eq!(to_vec(&v), br#"{"z":1,"a":[1,2,{"b":null}]}"#);
    }

    #[test]
    fn python_constants_parse_as_null() {
        let v = parse(br#"{"a":NaN,"b":[Infinity,-Infinity],"c":"NaN"}"#).unwrap();
        assert_eq!(v, json!({"a": null, "b": [null, null], "c": "NaN"}));
        assert!(parse(b"{bad").is_err());
    }
}
