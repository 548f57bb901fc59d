//! Digests of flows in their wire form, so that a controller can tell whether a switch's
//! flow dump holds exactly the flows it wants without decoding the dump. Decoding every
//! entry of a thousand switches' dumps into owned matches and instructions, then sorting
//! and comparing them, was most of a controller's OpenFlow work in a reconnect storm.
//!
//! A flow's digest covers what identifies it (table, priority, match) and what it does
//! (cookie, instructions): what [`FlowKey`] and [`FlowContent`] compare. A switch may report
//! a match's fields in another order than they were sent, so the match counts as the set of
//! its OXM fields (a sum of per-field hashes). Instructions count as they are encoded.
//!
//! Equal digests mean equal flows up to a collision of 128-bit hashes. Different digests
//! only mean different encodings (a switch may spell an action another way than it was
//! sent), so a caller that finds them different decodes and compares the flows.

use bytes::BytesMut;
use xxhash_rust::xxh3::xxh3_128;

use crate::error::{Error, Result};
use crate::flow::{FlowContent, FlowKey};
use crate::message::{FLOW_STATS_FIXED, FLOW_STATS_MIN};
use crate::oxm::OFPMT_OXM;
use crate::wire::Emit;

/// A flow's digest; a set of flows is digested as the wrapping sum of its flows'.
pub type Digest = u128;

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn bad(what: &'static str, offset: usize, len: usize) -> Error {
    Error::BadLength { what, offset, len }
}

/// The digest of a flow from its match (`ofp_match` with header and padding) followed by
/// its instructions, both in wire form. Fails on a malformed match, never panics.
pub fn wire_digest(table_id: u8, priority: u16, cookie: u64, wire: &[u8]) -> Result<Digest> {
    if wire.len() < 4 || be16(wire, 0) != OFPMT_OXM {
        return Err(bad("match", 0, wire.len()));
    }
    let match_len = usize::from(be16(wire, 2));
    if match_len < 4 || match_len > wire.len() {
        return Err(bad("match", 0, match_len));
    }
    let mut fields: Digest = 0;
    let mut at = 4;
    while at < match_len {
        if at + 4 > match_len {
            return Err(bad("match field", at, match_len - at));
        }
        let end = at + 4 + usize::from(wire[at + 3]);
        if end > match_len {
            return Err(bad("match field", at, end - at));
        }
        fields = fields.wrapping_add(xxh3_128(&wire[at..end]));
        at = end;
    }
    let instructions_at = match_len.div_ceil(8) * 8;
    let Some(instructions) = wire.get(instructions_at..) else {
        return Err(bad("match padding", match_len, wire.len() - match_len));
    };
    let mut whole = [0u8; 43];
    whole[0] = table_id;
    whole[1..3].copy_from_slice(&priority.to_be_bytes());
    whole[3..11].copy_from_slice(&cookie.to_be_bytes());
    whole[11..27].copy_from_slice(&fields.to_be_bytes());
    whole[27..43].copy_from_slice(&xxh3_128(instructions).to_be_bytes());
    Ok(xxh3_128(&whole))
}

/// The digest of a flow held decoded, as a switch that reports it in the same encoding
/// would digest it. `scratch` is a buffer the caller reuses across flows.
pub fn flow_digest(key: &FlowKey, content: &FlowContent, scratch: &mut BytesMut) -> Result<Digest> {
    scratch.clear();
    key.r#match.emit(scratch);
    for i in &content.instructions {
        i.emit(scratch);
    }
    wire_digest(key.table_id, key.priority, content.cookie, scratch)
}

/// One `ofp_flow_stats` entry of a flow dump, read only as far as its digest needs.
#[derive(Debug, Clone, Copy)]
pub struct RawFlowStats<'a> {
    pub table_id: u8,
    pub priority: u16,
    pub cookie: u64,
    /// The match and instructions, in wire form.
    wire: &'a [u8],
}

impl RawFlowStats<'_> {
    pub fn digest(&self) -> Result<Digest> {
        wire_digest(self.table_id, self.priority, self.cookie, self.wire)
    }
}

/// The entries of an `OFPMP_FLOW` reply body, each checked against the body's bounds.
/// After the first error the iterator ends.
pub fn raw_flow_stats(body: &[u8]) -> RawFlowStatsIter<'_> {
    RawFlowStatsIter { body, at: 0 }
}

#[derive(Debug, Clone)]
pub struct RawFlowStatsIter<'a> {
    body: &'a [u8],
    at: usize,
}

impl<'a> Iterator for RawFlowStatsIter<'a> {
    type Item = Result<RawFlowStats<'a>>;
    fn next(&mut self) -> Option<Self::Item> {
        let rest = self.body.get(self.at..).filter(|r| !r.is_empty())?;
        let len = if rest.len() >= 2 {
            usize::from(be16(rest, 0))
        } else {
            0
        };
        if len < FLOW_STATS_MIN || len > rest.len() {
            let at = self.at;
            self.at = self.body.len();
            return Some(Err(bad("flow stats", at, len)));
        }
        let e = &rest[..len];
        self.at += len;
        let mut cookie = [0u8; 8];
        cookie.copy_from_slice(&e[24..32]);
        Some(Ok(RawFlowStats {
            table_id: e[2],
            priority: be16(e, 12),
            cookie: u64::from_be_bytes(cookie),
            wire: &e[FLOW_STATS_FIXED..],
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::action::Action;
    use crate::instruction::Instruction;
    use crate::message::{FlowStats, MultipartReplyBody};
    use crate::oxm::{Field, Match};
    use crate::types::Mac;

    fn flow(fields: Vec<Field>, out: u32, cookie: u64) -> (FlowKey, FlowContent) {
        (
            FlowKey {
                table_id: 30,
                priority: 100,
                r#match: Match::new(fields).canonical(),
            },
            FlowContent {
                cookie,
                instructions: vec![Instruction::ApplyActions(vec![Action::output(out)])],
            },
        )
    }

    fn stats(key: &FlowKey, content: &FlowContent, fields: Vec<Field>) -> FlowStats {
        FlowStats {
            table_id: key.table_id,
            duration_sec: 7,
            duration_nsec: 9,
            priority: key.priority,
            idle_timeout: 0,
            hard_timeout: 0,
            flags: 0,
            cookie: content.cookie,
            packet_count: 1234,
            byte_count: 99,
            r#match: Match::new(fields),
            instructions: content.instructions.clone(),
        }
    }

    fn body(entries: &[FlowStats]) -> Vec<u8> {
        let mut b = BytesMut::new();
        for e in entries {
            e.emit(&mut b);
        }
        b.to_vec()
    }

    fn fields() -> Vec<Field> {
        vec![
            Field::Metadata(0x1389, None),
            Field::EthDst(Mac([2, 0, 0, 0, 0, 1]), None),
        ]
    }

    /// A dumped entry digests like the flow it reports, whatever order its match fields
    /// come in and whatever its counters say; any difference in what the diff compares
    /// changes the digest.
    #[test]
    fn dumped_entries_digest_like_the_flow() {
        let mut scratch = BytesMut::new();
        let (k, c) = flow(fields(), 3, 5);
        let want = flow_digest(&k, &c, &mut scratch).unwrap();
        let mut reversed = fields();
        reversed.reverse();
        let b = body(&[stats(&k, &c, fields()), stats(&k, &c, reversed)]);
        let got: Vec<Digest> = raw_flow_stats(&b)
            .map(|e| e.unwrap().digest().unwrap())
            .collect();
        assert_eq!(got, vec![want, want]);
        let others = [
            flow(fields(), 4, 5),
            flow(fields(), 3, 6),
            flow(fields()[..1].to_vec(), 3, 5),
        ];
        for (ok, oc) in &others {
            assert_ne!(
                flow_digest(ok, oc, &mut scratch).unwrap(),
                want,
                "{ok:?} {oc:?}"
            );
        }
        let mut other_table = k.clone();
        other_table.table_id = 31;
        let mut other_priority = k.clone();
        other_priority.priority = 99;
        for ok in [other_table, other_priority] {
            assert_ne!(flow_digest(&ok, &c, &mut scratch).unwrap(), want);
        }
        // The raw body decodes to the same entries as the typed reply's.
        let typed = MultipartReplyBody::Raw {
            mp_type: crate::message::MultipartType::Flow,
            body: b.clone(),
        }
        .decoded()
        .unwrap();
        assert!(matches!(typed, MultipartReplyBody::Flow(v) if v.len() == 2));
    }

    /// Truncated or inconsistent bodies are errors, never panics or overreads.
    #[test]
    fn malformed_bodies_are_errors() {
        let (k, c) = flow(fields(), 3, 5);
        let b = body(&[stats(&k, &c, fields())]);
        for cut in 0..b.len() {
            let results: Vec<_> = raw_flow_stats(&b[..cut]).collect();
            if cut == 0 {
                assert!(results.is_empty());
            } else {
                assert!(results.last().unwrap().is_err(), "cut at {cut}");
            }
        }
        // A match length that runs past the entry, and a field past the match.
        let mut long = b.clone();
        long[FLOW_STATS_FIXED + 2] = 0xff;
        assert!(
            raw_flow_stats(&long)
                .next()
                .unwrap()
                .unwrap()
                .digest()
                .is_err()
        );
        let mut field = b.clone();
        field[FLOW_STATS_FIXED + 4 + 3] = 0xf0;
        assert!(
            raw_flow_stats(&field)
                .next()
                .unwrap()
                .unwrap()
                .digest()
                .is_err()
        );
        // Every byte flipped, one at a time: an error or a digest, never a panic.
        for i in 0..b.len() {
            for x in [0x00, 0xff, 0x80] {
                let mut m = b.clone();
                m[i] = x;
                for e in raw_flow_stats(&m) {
                    let _ = e.map(|e| e.digest());
                }
            }
        }
    }
}
