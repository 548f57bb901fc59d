//! Fuzz: decoding arbitrary bytes never panics, and whatever decodes re-encodes to bytes that
//! decode to the same value (decode -> emit -> decode is stable).
#![no_main]

use libfuzzer_sys::fuzz_target;
use openflow::OfpMessage;

fuzz_target!(|data: &[u8]| {
    let _ = openflow::ofp_print(data);
    if let Ok((msg, _)) = OfpMessage::decode_prefix(data) {
        let mut buf = bytes::BytesMut::new();
        if msg.encode(&mut buf).is_ok() {
            let again = OfpMessage::decode(&buf).expect("re-encoded message must decode");
            assert_eq!(again, msg, "decode -> emit -> decode changed the value");
            let mut buf2 = bytes::BytesMut::new();
            again.encode(&mut buf2).expect("second encode");
            assert_eq!(buf, buf2, "emit is not stable");
        }
    }
});
