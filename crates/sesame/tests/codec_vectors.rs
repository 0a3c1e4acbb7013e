//! The codec against vectors produced by real Django 5.2 (`tests/django/make_vectors.py`):
//! encoding the same data at the same time gives the same bytes, and decoding gives Django's
//! data back.

use serde_json::Value;
use sesame::codec::Codec;

#[derive(serde::Deserialize)]
struct Vector {
    name: String,
    json: String,
    decoded: String,
    encoded: String,
    secret: String,
    salt: String,
    timestamp: i64,
    compressed: bool,
}

fn vectors() -> Vec<Vector> {
    let text = include_str!("fixtures/django_vectors.json");
    serde_json::from_str(text).expect("fixture parses")
}

#[test]
fn encoding_matches_django_byte_for_byte() {
    let vs = vectors();
    assert!(vs.len() > 50);
    for v in &vs {
        let codec = Codec::with_salt(&v.salt, &v.secret, &[]);
        let data: Value = serde_json::from_str(&v.json).unwrap();
        let Value::Object(map) = data else { panic!("{}: not an object", v.name) };
        assert_eq!(codec.encode_at(&map, v.timestamp), v.encoded, "vector {}", v.name);
        assert_eq!(v.encoded.starts_with('.'), v.compressed, "vector {}", v.name);
    }
}

#[test]
fn decoding_gives_djangos_data() {
    for v in vectors() {
        let codec = Codec::with_salt(&v.salt, &v.secret, &[]);
        let decoded = codec.decode(&v.encoded).unwrap_or_else(|e| panic!("vector {}: {e}", v.name));
        let expected: Value = serde_json::from_str(&v.decoded).unwrap();
        assert_eq!(Value::Object(decoded.data), expected, "vector {}", v.name);
        assert_eq!(decoded.timestamp, v.timestamp);
    }
}

#[test]
fn old_keys_verify_only_as_fallbacks() {
    let old: Vec<Vector> = vectors().into_iter().filter(|v| v.secret == "old-secret-key").collect();
    assert!(!old.is_empty());
    for v in old {
        let without = Codec::with_salt(&v.salt, "new-secret-key", &[]);
        assert!(without.decode(&v.encoded).is_err(), "vector {}", v.name);
        let with = Codec::with_salt(&v.salt, "new-secret-key", &["unrelated".into(), "old-secret-key".into()]);
        assert!(with.decode(&v.encoded).is_ok(), "vector {}", v.name);
    }
}

/// What Python writes but strict JSON lacks: Sesame's documented choices.
#[test]
fn nonstandard_python_json_has_defined_outcomes() {
    #[derive(serde::Deserialize)]
    struct File {
        vectors: Vec<Odd>,
    }
    #[derive(serde::Deserialize)]
    struct Odd {
        name: String,
        encoded: String,
        secret: String,
        salt: String,
    }
    let file: File = serde_json::from_str(include_str!("fixtures/django_vectors_nonstandard.json")).unwrap();
    assert_eq!(file.vectors.len(), 13);
    for v in file.vectors {
        let codec = Codec::with_salt(&v.salt, &v.secret, &[]);
        let got = codec.decode(&v.encoded).map(|d| Value::Object(d.data));
        let expect: Option<Value> = match v.name.as_str() {
            // No JSON value for these: read as null rather than losing the whole session.
            "nan" | "infinity" | "neg_infinity" => Some(serde_json::json!({"f": null})),
            "u64_max" => Some(serde_json::json!({"n": u64::MAX})),
            // Beyond 64 bits: the nearest double, as JavaScript would read it.
            "bigger_than_u64" => Some(serde_json::json!({"n": 18446744073709551616.0})),
            "huge_int" => Some(serde_json::json!({"n": 1e30})),
            "int_key_becomes_string" => Some(serde_json::json!({"1": "one"})),
            "tuple_becomes_list" => Some(serde_json::json!({"t": [1, 2]})),
            // Not representable in Rust strings / not a session map: an error, which a session
            // load turns into an empty session (logged), as Django does for undecodable data.
            "lone_high_surrogate" | "lone_low_surrogate" | "top_level_list" | "top_level_string" | "top_level_null" => {
                None
            }
            other => panic!("unexpected vector {other}"),
        };
        match expect {
            Some(e) => assert_eq!(got.unwrap_or_else(|err| panic!("{}: {err}", v.name)), e, "{}", v.name),
            None => assert!(got.is_err(), "{} should not decode", v.name),
        }
    }
}
