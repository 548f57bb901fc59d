//! Inputs the fuzzer (openflow/fuzz) once broke the codec with, replayed against the same
//! property: decoding never panics, printing never panics, and decode -> encode -> decode
//! is stable.

use openflow::OfpMessage;

#[test]
fn fuzz_findings_stay_fixed() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz_regressions");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let path = e.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        let _ = openflow::ofp_print(&data);
        if let Ok((msg, _)) = OfpMessage::decode_prefix(&data) {
            let bytes = msg.to_bytes().unwrap();
            let again = OfpMessage::decode(&bytes).unwrap();
            assert_eq!(again, msg, "{}", path.display());
            assert_eq!(again.to_bytes().unwrap(), bytes, "{}", path.display());
        }
        n += 1;
    }
    assert!(n >= 2);
}
