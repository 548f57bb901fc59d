//! Text output in `ovs-ofctl` style: matches and actions formatted (and ordered) as Open
//! vSwitch prints them, a dump-flows style `Display` for flows, [`ofp_print`] for any
//! message (like `ovs-ofctl ofp-print`) and [`roundtrip`] for checking that bytes re-encode
//! exactly.
//!
//! Each concept prints in its own module: `match_fields`, `actions`, flows and their
//! `Display` impls (`flow`), whole messages (`message`). This module holds the entry
//! points for raw bytes.

mod actions;
mod flow;
mod match_fields;
mod message;

use std::fmt::{self, Write as _};

use crate::message::*;

pub use actions::{format_actions, format_instructions};
pub use flow::format_flow_mod_body;
pub use match_fields::{DEFAULT_PRIORITY, ct_state_flags, format_match};
pub use message::print_message;

use message::hex_dump;

/// Pretty-prints every message in `bytes` (one or more, back to back), like
/// `ovs-ofctl ofp-print`. Undecodable input is reported with the error and a hex dump.
pub fn ofp_print(bytes: &[u8]) -> String {
    let mut out = String::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        match OfpMessage::decode_prefix(rest) {
            Ok((m, used)) => {
                if !out.is_empty() {
                    out.push('\n');
                }
                out.push_str(&print_message(&m));
                rest = rest.get(used..).unwrap_or(&[]);
            }
            Err(e) => {
                if !out.is_empty() {
                    out.push('\n');
                }
                let _ = write!(out, "*** decode error: {e}\n{}", hex_dump(rest));
                break;
            }
        }
    }
    out
}

/// Result of decoding and re-encoding bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoundTrip {
    /// Re-encoding reproduced every byte.
    Exact {
        messages: usize,
        raw_parts: usize,
    },
    /// Re-encoding differs first at `offset`.
    Differs {
        offset: usize,
        original_len: usize,
        reencoded_len: usize,
    },
    DecodeError(crate::Error),
    EncodeError(crate::Error),
}

impl fmt::Display for RoundTrip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RoundTrip::Exact {
                messages,
                raw_parts,
            } => {
                write!(
                    f,
                    "byte-exact ({messages} message(s), {raw_parts} raw part(s))"
                )
            }
            RoundTrip::Differs {
                offset,
                original_len,
                reencoded_len,
            } => write!(
                f,
                "differs at offset {offset} (original {original_len} bytes, re-encoded {reencoded_len} bytes)"
            ),
            RoundTrip::DecodeError(e) => write!(f, "decode error: {e}"),
            RoundTrip::EncodeError(e) => write!(f, "encode error: {e}"),
        }
    }
}

/// Decodes every message in `bytes`, re-encodes them, and compares byte by byte.
pub fn roundtrip(bytes: &[u8]) -> RoundTrip {
    let mut rest = bytes;
    let mut out = bytes::BytesMut::new();
    let mut messages = 0;
    let mut raw_parts = 0;
    while !rest.is_empty() {
        match OfpMessage::decode_prefix(rest) {
            Ok((m, used)) => {
                if let Err(e) = m.encode(&mut out) {
                    return RoundTrip::EncodeError(e);
                }
                messages += 1;
                raw_parts += m.raw_count();
                rest = rest.get(used..).unwrap_or(&[]);
            }
            Err(e) => return RoundTrip::DecodeError(e),
        }
    }
    match bytes.iter().zip(out.iter()).position(|(a, b)| a != b) {
        Some(offset) => RoundTrip::Differs {
            offset,
            original_len: bytes.len(),
            reencoded_len: out.len(),
        },
        None if bytes.len() != out.len() => RoundTrip::Differs {
            offset: bytes.len().min(out.len()),
            original_len: bytes.len(),
            reencoded_len: out.len(),
        },
        None => RoundTrip::Exact {
            messages,
            raw_parts,
        },
    }
}

/// Parses hex as users paste it (`0x` prefix, spaces, colons and newlines allowed), for
/// `weftctl ofp-print <hex>`.
pub fn parse_hex(s: &str) -> std::result::Result<Vec<u8>, String> {
    let s = s.trim();
    let s = s.strip_prefix("0x").unwrap_or(s);
    let digits: Vec<u8> = s
        .bytes()
        .filter(|c| !c.is_ascii_whitespace() && *c != b':' && *c != b'-')
        .collect();
    if !digits.len().is_multiple_of(2) {
        return Err(format!("odd number of hex digits ({})", digits.len()));
    }
    digits
        .chunks(2)
        .enumerate()
        .map(|(i, p)| {
            let t = std::str::from_utf8(p).map_err(|_| format!("bad hex at digit {}", 2 * i))?;
            u8::from_str_radix(t, 16).map_err(|_| format!("bad hex {t:?} at digit {}", 2 * i))
        })
        .collect()
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn print_and_roundtrip_from_pasted_hex() {
        let bytes = parse_hex("0x04 14 00 08\n00 00 00 05").unwrap();
        assert_eq!(ofp_print(&bytes), "OFPT_BARRIER_REQUEST (OF1.3) (xid=0x5):");
        assert_eq!(
            roundtrip(&bytes),
            RoundTrip::Exact {
                messages: 1,
                raw_parts: 0
            }
        );
        assert!(parse_hex("abc").is_err());
        let t = ofp_print(&[4, 14, 0, 9, 0, 0, 0, 1, 0]);
        assert!(t.starts_with("*** decode error"), "{t}");
    }
}
