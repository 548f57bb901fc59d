//! Helpers for the message tests: headers around hand-written bodies, and the check that
//! a body decodes to the expected value and encodes back to the same bytes.

use super::{Message, OfpMessage};

/// `bytes` decodes to `expected` and `expected` encodes to `bytes`.
pub(super) fn check(bytes: &[u8], expected: OfpMessage) {
    let got = OfpMessage::decode(bytes).unwrap();
    assert_eq!(got, expected);
    assert_eq!(expected.to_bytes().unwrap(), bytes);
}

pub(super) const XID: u32 = 0x1234_5678;
const XID_BYTES: [u8; 4] = [0x12, 0x34, 0x56, 0x78];

pub(super) fn msg(body: Message) -> OfpMessage {
    OfpMessage::new(XID, body)
}

pub(super) fn with_header(t: u8, body: &[u8]) -> Vec<u8> {
    let len = (8 + body.len()) as u16;
    let mut v = vec![4, t, (len >> 8) as u8, len as u8];
    v.extend_from_slice(&XID_BYTES);
    v.extend_from_slice(body);
    v
}

/// An OXM match of `in_port=3`, padded, as PACKET_IN and FLOW_REMOVED carry it.
pub(super) const IN_PORT_3_MATCH: [u8; 16] = [
    0x00, 0x01, 0x00, 0x0c, // OXM match, len 12
    0x80, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x03, // in_port=3
    0x00, 0x00, 0x00, 0x00, // pad to 8
];
