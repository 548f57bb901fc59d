//! os-ken's OpenFlow 1.3 test vectors (an independent implementation's captures): every
//! `.packet` must decode and re-encode byte-exact. Set WEFT_OSKEN_VECTORS to the `of13`
//! directory; the default is `<workspace>/target/testdata/os-ken/of13`, where
//! `scripts/test.sh` puts it.

use std::path::PathBuf;

use openflow::{OfpMessage, RoundTrip, roundtrip};

fn vectors_dir() -> PathBuf {
    match std::env::var_os("WEFT_OSKEN_VECTORS") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/testdata/os-ken/of13"),
    }
}

#[test]
fn osken_of13_vectors_roundtrip_byte_exact() {
    let dir = vectors_dir();
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| {
        panic!(
            "os-ken OF1.3 vectors missing at {} ({e}). Fetch them with scripts/test.sh, or: \
             pip download --no-deps os-ken && unzip the wheel's os_ken/tests/packet_data/of13/* \
             there (or point WEFT_OSKEN_VECTORS at the directory)",
            dir.display()
        )
    });
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "packet"))
        .collect();
    files.sort();
    assert!(
        files.len() > 50,
        "expected os-ken's ~90 .packet files in {}, found {}",
        dir.display(),
        files.len()
    );
    let mut failures = Vec::new();
    let mut raw_messages = Vec::new();
    let mut total_raw_parts = 0;
    for f in &files {
        let bytes = std::fs::read(f).unwrap();
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        match roundtrip(&bytes) {
            RoundTrip::Exact { raw_parts, .. } => {
                if raw_parts > 0 {
                    total_raw_parts += raw_parts;
                    let m = OfpMessage::decode_prefix(&bytes).unwrap().0;
                    raw_messages.push(format!(
                        "{name} ({raw_parts} raw part(s), {})",
                        openflow::print::print_message(&m)
                            .lines()
                            .next()
                            .unwrap_or("")
                            .chars()
                            .take(100)
                            .collect::<String>()
                    ));
                }
            }
            other => failures.push(format!("{name}: {other}")),
        }
    }
    println!(
        "os-ken vectors: {} files, {} byte-exact",
        files.len(),
        files.len() - failures.len()
    );
    println!(
        "messages with raw/unknown parts: {} ({} raw parts in all)",
        raw_messages.len(),
        total_raw_parts
    );
    for r in &raw_messages {
        println!("  raw: {r}");
    }
    assert!(
        failures.is_empty(),
        "{} vector(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn truncated_vector_is_an_error_not_a_panic() {
    let path = vectors_dir().join("libofproto-OFP13-flow_mod.truncated64");
    let Ok(bytes) = std::fs::read(&path) else {
        panic!(
            "missing {}: fetch os-ken vectors (see osken_of13_vectors_roundtrip_byte_exact)",
            path.display()
        );
    };
    // 64 bytes of a longer FLOW_MOD: the header claims more than is there.
    assert!(OfpMessage::decode(&bytes).is_err());
}
