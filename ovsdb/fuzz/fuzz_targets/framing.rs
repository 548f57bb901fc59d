//! Fuzz: the JSON-RPC framing. Arbitrary bytes, fed to `JsonCodec` whole and in chunks cut
//! at arbitrary points, never panic, and produce the same messages (and the same first
//! error, if any) however the stream is chunked.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use ovsdb::JsonCodec;
use tokio_util::codec::Decoder;

/// What a stream decodes to: the messages up to the first error, and that error's kind.
#[derive(Debug, PartialEq)]
struct Outcome {
    messages: Vec<serde_json::Value>,
    error: Option<String>,
}

/// Error kind without the byte counts that legitimately depend on how much was buffered.
fn kind(e: &ovsdb::codec::CodecError) -> String {
    use ovsdb::codec::CodecError as E;
    match e {
        E::FrameTooLarge { .. } => "too large".into(),
        E::Garbage { byte } => format!("garbage {byte:#x}"),
        E::InvalidJson { len, .. } => format!("invalid json in {len}"),
        E::TooDeep(d) => format!("too deep {d}"),
        E::Rpc(r) => format!("rpc {r}"),
        E::Io(_) => "io".into(),
    }
}

fn run(chunks: &[&[u8]], max_frame: usize) -> Outcome {
    let mut codec = JsonCodec::new(max_frame);
    let mut buf = BytesMut::new();
    let mut out = Outcome {
        messages: Vec::new(),
        error: None,
    };
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        loop {
            match codec.decode(&mut buf) {
                Ok(Some(m)) => out.messages.push(m.to_json()),
                Ok(None) => break,
                Err(e) => {
                    out.error = Some(kind(&e));
                    return out;
                }
            }
        }
    }
    out
}

fn has_float(v: &serde_json::Value) -> bool {
    match v {
        serde_json::Value::Number(n) => n.is_f64(),
        serde_json::Value::Array(a) => a.iter().any(has_float),
        serde_json::Value::Object(o) => o.values().any(has_float),
        _ => false,
    }
}

fuzz_target!(|data: &[u8]| {
    // First two bytes: the chunking seed; the rest is the stream.
    let (seed, stream) = match data {
        [a, b, rest @ ..] => (u16::from_be_bytes([*a, *b]), rest),
        _ => return,
    };
    // Large enough that no input reaches it: chunking cannot change the outcome.
    let max = 1 << 20;
    let whole = run(&[stream], max);
    // Cut points from a small LCG seeded by the input, so failures reproduce.
    let mut chunks = Vec::new();
    let mut rest = stream;
    let mut x = u32::from(seed) | 1;
    while !rest.is_empty() {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        let n = (x >> 16) as usize % 17 + usize::from(seed % 3 == 0);
        let n = n.min(rest.len());
        let (a, b) = rest.split_at(n);
        chunks.push(a);
        rest = b;
    }
    let chunked = run(&chunks, max);
    assert_eq!(whole, chunked, "chunking changed the decoded stream");
    // Byte by byte: the slowest path through the resumable scanner.
    let bytes: Vec<&[u8]> = stream.chunks(1).collect();
    assert_eq!(
        whole,
        run(&bytes, max),
        "byte-wise feeding changed the decoded stream"
    );
    // A tiny frame limit: only a typed error, never a panic.
    let _ = run(&chunks, 16);
    // Every message re-encodes to a frame that decodes to itself. Floats are left out:
    // serde_json (without `float_roundtrip`) may parse a long decimal 1 ulp off, so a
    // float id (which no OVSDB peer uses) is not bit-exact across a round trip.
    for m in whole.messages.iter().filter(|m| !has_float(m)) {
        let msg = ovsdb::rpc::Message::from_json(m.clone()).expect("decoded message re-parses");
        let mut enc = BytesMut::new();
        tokio_util::codec::Encoder::encode(&mut JsonCodec::default(), &msg, &mut enc)
            .expect("encode");
        let again = JsonCodec::default()
            .decode(&mut enc)
            .expect("re-encoded frame decodes")
            .expect("re-encoded frame is complete");
        assert_eq!(again, msg, "encode -> decode changed the message");
    }
});
