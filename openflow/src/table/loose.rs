//! Which installed flows a loose request names, and which overlap a new one, decided on
//! the encoded OXM bytes of the matches: one byte-wise rule serves every field, including
//! ones the packet model does not know.

use bytes::BytesMut;

use crate::oxm::Match;
use crate::wire::Emit;

struct Oxm<'a> {
    id: (u16, u8, u32),
    value: &'a [u8],
    mask: Option<&'a [u8]>,
}

/// Splits an encoded `ofp_match` (OXM type) into its fields. Malformed input yields the
/// fields parsed so far (the bytes came from our own encoder).
fn oxm_fields(m: &[u8]) -> Vec<Oxm<'_>> {
    let mut out = Vec::new();
    let len = match m.get(2..4) {
        Some(b) => usize::from(u16::from_be_bytes([b[0], b[1]])),
        None => return out,
    };
    let body = m.get(4..len.min(m.len())).unwrap_or(&[]);
    let mut pos = 0;
    while let Some(h) = body.get(pos..pos + 4) {
        let class = u16::from_be_bytes([h[0], h[1]]);
        let field = h[2] >> 1;
        let has_mask = h[2] & 1 == 1;
        let plen = usize::from(h[3]);
        let Some(mut payload) = body.get(pos + 4..pos + 4 + plen) else {
            break;
        };
        pos += 4 + plen;
        let mut exp = 0;
        if class == 0xffff {
            let Some(e) = payload.get(..4) else {
                break;
            };
            exp = u32::from_be_bytes([e[0], e[1], e[2], e[3]]);
            payload = payload.get(4..).unwrap_or(&[]);
        }
        let (value, mask) = if has_mask {
            let half = payload.len() / 2;
            (&payload[..half], Some(&payload[half..]))
        } else {
            (payload, None)
        };
        out.push(Oxm {
            id: (class, field, exp),
            value,
            mask,
        });
    }
    out
}

fn mask_byte(mask: Option<&[u8]>, i: usize) -> u8 {
    mask.map_or(0xff, |m| m.get(i).copied().unwrap_or(0))
}

/// Whether a flow with match `flow` is covered by a loose request match `req`: the flow
/// is at least as specific as the request on every field the request names.
fn covers(req: &[u8], flow: &[u8]) -> bool {
    let f = oxm_fields(flow);
    oxm_fields(req).iter().all(|r| {
        let Some(x) = f.iter().find(|x| x.id == r.id) else {
            return r.mask.is_some_and(|m| m.iter().all(|b| *b == 0));
        };
        r.value.len() == x.value.len()
            && (0..r.value.len()).all(|i| {
                let mr = mask_byte(r.mask, i);
                let mf = mask_byte(x.mask, i);
                mf & mr == mr && x.value[i] & mr == r.value[i] & mr
            })
    })
}

/// Whether some packet could match both matches (same-priority overlap).
fn overlaps(a: &[u8], b: &[u8]) -> bool {
    let fb = oxm_fields(b);
    oxm_fields(a).iter().all(|x| {
        let Some(y) = fb.iter().find(|y| y.id == x.id) else {
            return true;
        };
        x.value.len() != y.value.len()
            || (0..x.value.len()).all(|i| {
                let m = mask_byte(x.mask, i) & mask_byte(y.mask, i);
                x.value[i] & m == y.value[i] & m
            })
    })
}

fn encode_match(m: &Match) -> Box<[u8]> {
    let mut b = BytesMut::with_capacity(m.buffer_len());
    m.emit(&mut b);
    b.to_vec().into_boxed_slice()
}

/// A loose modify/delete/stats request's match, encoded once for comparing with many flows.
pub(super) struct LooseMatch(Option<Box<[u8]>>);

impl LooseMatch {
    pub(super) fn new(m: &Match) -> Self {
        LooseMatch((!m.fields.is_empty()).then(|| encode_match(m)))
    }

    /// Whether the request selects a flow with match `flow` (an empty request selects all).
    pub(super) fn covers(&self, flow: &Match) -> bool {
        match &self.0 {
            None => true,
            Some(req) => covers(req, &encode_match(flow)),
        }
    }
}

/// Whether some packet could match both `a` and `b` (for `CHECK_OVERLAP`).
pub(super) fn overlap(a: &Match, b: &Match) -> bool {
    overlaps(&encode_match(a), &encode_match(b))
}
