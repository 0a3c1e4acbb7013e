//! Micro-benchmarks of the hot pure functions: encoding and decoding `session_data` (Django
//! takes ~27 µs / ~25 µs for a 226-byte session) and generating a session key.
//! `cargo bench -p sesame --bench codec`; `bench/django_codec.py` times Django on the same data.

use criterion::{criterion_group, criterion_main, Criterion};
use sesame::codec::Codec;
use std::hint::black_box;

/// A session whose JSON is 231 bytes (Django quotes ~27 µs / ~25 µs for 226 bytes): the tutorial's data, a test cookie, an expiry and a flash
/// message.
fn session() -> sesame::Data {
    let v = serde_json::json!({
        "id": 1,
        "name": "root",
        "password": "rootpass",
        "testcookie": "worked",
        "_session_expiry": 300,
        "_messages": "[[\"__json_message\", 0, 40, \"Error wrong username/password\", \"\"]]",
        "cart": {"items": ["apple", "pear"], "total": 3.5},
        "visits": 12
    });
    v.as_object().cloned().unwrap_or_default()
}

fn benches(c: &mut Criterion) {
    let codec = Codec::new("bench-secret-key-bench-secret-key-bench-secret-key", &[]);
    let data = session();
    let json_len = sesame::pyjson::to_vec(&data).len();
    let encoded = codec.encode(&data);
    eprintln!("session JSON: {json_len} bytes; encoded session_data: {} bytes", encoded.len());
    c.bench_function("encode 231-byte session", |b| b.iter(|| codec.encode(black_box(&data))));
    c.bench_function("decode 231-byte session", |b| b.iter(|| codec.decode(black_box(&encoded))));
    c.bench_function("generate session key", |b| b.iter(sesame::key::generate));
}

criterion_group!(codec, benches);
criterion_main!(codec);
