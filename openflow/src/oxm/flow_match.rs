//! [`Match`]: an `ofp_match` of type OXM, its wire form and its canonical (order- and
//! mask-normalized) form for comparing flows.

use bytes::{BufMut, BytesMut};

use crate::error::Result;
use crate::wire::{Emit, Reader, pad8, patch_u16, put_zeros};

use super::Field;

/// An `ofp_match` of type OXM: the fields in wire order.
///
/// Two matches that differ only in field order mean the same thing (OVS re-orders fields in
/// flow-stats replies); compare [`Match::canonical`] forms for that.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Match {
    pub fields: Vec<Field>,
}

/// `ofp_match.type` for OXM.
pub const OFPMT_OXM: u16 = 1;

impl Match {
    pub fn new(fields: Vec<Field>) -> Self {
        Match { fields }
    }

    /// Adds a field (builder style).
    pub fn with(mut self, f: Field) -> Self {
        self.fields.push(f);
        self
    }

    /// The same match with fields normalized ([`Field::normalized`]) and sorted by wire
    /// identity: equal for equal meaning, whatever order or mask spelling a switch uses.
    pub fn canonical(&self) -> Match {
        self.clone().into_canonical()
    }

    /// [`Match::canonical`] of an owned match, normalizing and sorting its own fields in
    /// place: a compiler building thousands of flows or a flow dump being keyed then pays
    /// for no second vector and no copy of each field.
    pub fn into_canonical(mut self) -> Match {
        for f in &mut self.fields {
            if f.has_mask() {
                *f = f.normalized();
            }
        }
        let order = |a: &Field, b: &Field| a.sort_key().cmp(&b.sort_key()).then_with(|| a.cmp(b));
        if !self.fields.is_sorted_by(|a, b| order(a, b).is_le()) {
            self.fields.sort_by(order);
        }
        self
    }

    /// Length of the fields plus the 4-byte `ofp_match` header, without padding.
    fn unpadded_len(&self) -> usize {
        4 + self.fields.iter().map(Emit::buffer_len).sum::<usize>()
    }

    pub(crate) fn parse(r: &mut Reader<'_>) -> Result<Match> {
        let start = r.offset();
        let mtype = r.u16("match type")?;
        if mtype != OFPMT_OXM {
            return Err(crate::Error::BadValue {
                what: "match type",
                offset: start,
                value: mtype.into(),
            });
        }
        let len = usize::from(r.u16("match length")?);
        if len < 4 {
            return Err(r.bad_len("match", len));
        }
        let mut fr = r.sub(len - 4, "match fields")?;
        let mut fields = Vec::new();
        while !fr.is_empty() {
            fields.push(Field::parse(&mut fr)?);
        }
        r.skip(pad8(len), "match padding")?;
        Ok(Match { fields })
    }

    /// Looks up the first field with the given identity.
    pub fn get(&self, pred: impl Fn(&Field) -> bool) -> Option<&Field> {
        self.fields.iter().find(|f| pred(f))
    }
}

impl Emit for Match {
    fn buffer_len(&self) -> usize {
        let l = self.unpadded_len();
        l + pad8(l)
    }
    fn emit(&self, buf: &mut BytesMut) {
        let start = buf.len();
        buf.put_u16(OFPMT_OXM);
        buf.put_u16(0);
        for f in &self.fields {
            f.emit(buf);
        }
        let len = buf.len() - start;
        patch_u16(buf, start + 2, len);
        put_zeros(buf, pad8(len));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Mac;
    use std::net::{Ipv4Addr, Ipv6Addr};

    #[test]
    fn match_roundtrip_with_nicira_fields() {
        let bytes: &[u8] = &[
            0x00, 0x01, 0x00, 0x2e, // type OXM, length 46
            0x80, 0x00, 0x04, 0x08, 0, 0, 0, 0, 0, 0, 0x13, 0x89, // metadata=0x1389
            0x00, 0x01, 0x0c, 0x04, 0, 0, 0, 5, // reg6=5
            0x00, 0x01, 0xd3, 0x08, 0, 0, 0, 0x22, 0, 0, 0, 0x22, // ct_state=+est+trk
            0xff, 0xff, 0x54, 0x06, 0x4f, 0x4e, 0x46, 0x00, 0x00, 0x02, // tcp_flags (ONF exp)
            0x00, 0x00, // padding to 48
        ];
        let m = Match::parse(&mut Reader::new(bytes)).unwrap();
        assert_eq!(
            m.fields,
            vec![
                Field::Metadata(0x1389, None),
                Field::Reg(6, 5, None),
                Field::CtState(0x22, Some(0x22)),
                Field::TcpFlags(2, None),
            ]
        );
        let mut out = BytesMut::new();
        m.emit(&mut out);
        assert_eq!(&out[..], bytes);
    }

    /// The fields distributed routing and the ND responder use, as OVS 3.1 encodes them
    /// (`ovs-ofctl -O OpenFlow13 add-flow` of `dl_vlan=5,nw_ttl=64,nd_reserved=...`).
    #[test]
    fn ttl_vlan_and_nd_fields_roundtrip() {
        let bytes: &[u8] = &[
            0x00, 0x01, 0x00, 0x1c, // type OXM, length 28
            0x80, 0x00, 0x0c, 0x02, 0x10, 0x05, // OXM_OF_VLAN_VID = present|5
            0x00, 0x01, 0x3a, 0x01, 0x40, // NXM_NX_IP_TTL = 64
            0x10, 0x00, 0x02, 0x04, 0xe0, 0, 0, 0, // ERICOXM_OF_ICMPV6_ND_RESERVED = R|S|O
            0x10, 0x00, 0x04, 0x01, 0x02, // ERICOXM_OF_ICMPV6_ND_OPTIONS_TYPE = 2
            0, 0, 0, 0, // padding to 32
        ];
        let m = Match::parse(&mut Reader::new(bytes)).unwrap();
        assert_eq!(
            m.fields,
            vec![
                Field::VlanVid(0x1005, None),
                Field::IpTtl(64, None),
                Field::NdReserved(0xe000_0000, None),
                Field::NdOptionsType(2, None),
            ]
        );
        let mut out = BytesMut::new();
        m.emit(&mut out);
        assert_eq!(&out[..], bytes);
        let names: Vec<String> = m.fields.iter().map(Field::name).collect();
        assert_eq!(
            names,
            ["vlan_vid", "nw_ttl", "nd_reserved", "nd_options_type"]
        );
        assert_eq!(m.fields[2].format_value(), "3758096384");
    }

    /// A known field with the wrong payload size stays raw and re-emits as it came, and a
    /// length running past the match is an error, never a panic.
    #[test]
    fn malformed_new_fields_are_raw_or_errors() {
        for field in [
            [0x00, 0x01, 0x3a, 0x02, 0x40, 0x40], // nw_ttl with 2 bytes
            [0x10, 0x00, 0x02, 0x02, 0xe0, 0x00], // nd_reserved with 2 bytes
            [0x10, 0x00, 0x04, 0x02, 0x02, 0x00], // nd_options_type with 2 bytes
            [0x80, 0x00, 0x0c, 0x02, 0x10, 0x05], // control: well formed
        ] {
            let mut bytes = vec![0x00, 0x01, 0x00, 0x0a];
            bytes.extend_from_slice(&field);
            bytes.extend_from_slice(&[0; 6]);
            let m = Match::parse(&mut Reader::new(&bytes)).unwrap();
            let mut out = BytesMut::new();
            m.emit(&mut out);
            assert_eq!(&out[..], &bytes[..], "{field:02x?}");
            let raw = matches!(m.fields[0], Field::Raw(_));
            assert_eq!(raw, field[0] != 0x80, "{field:02x?}: {:?}", m.fields);
        }
        // nd_options_type with a mask is well-formed on the wire (OVS's parser is lenient
        // too); validate() is what refuses it.
        let masked = [
            0x00, 0x01, 0x00, 0x0a, 0x10, 0x00, 0x05, 0x02, 0x02, 0xff, 0, 0, 0, 0, 0, 0,
        ];
        let m = Match::parse(&mut Reader::new(&masked)).unwrap();
        assert_eq!(m.fields, vec![Field::NdOptionsType(2, Some(0xff))]);
        let past = [
            0x00, 0x01, 0x00, 0x0c, 0x10, 0x00, 0x02, 0x08, 0xe0, 0, 0, 0, 0, 0, 0, 0,
        ];
        assert!(Match::parse(&mut Reader::new(&past)).is_err());
    }

    #[test]
    fn unknown_field_is_raw_and_exact() {
        let bytes: &[u8] = &[
            0x00, 0x01, 0x00, 0x0a, 0x00, 0x01, 0xf0, 0x02, 0xab, 0xcd, 0, 0, 0, 0, 0, 0,
        ];
        let m = Match::parse(&mut Reader::new(bytes)).unwrap();
        assert!(matches!(m.fields[0], Field::Raw(_)));
        let mut out = BytesMut::new();
        m.emit(&mut out);
        assert_eq!(&out[..], bytes);
    }

    #[test]
    fn canonical_normalizes_masks() {
        let a = Match::new(vec![
            Field::Ipv4Dst(
                Ipv4Addr::new(10, 0, 0, 7),
                Some(Ipv4Addr::new(255, 255, 255, 0)),
            ),
            Field::Metadata(5, Some(u64::MAX)),
        ]);
        let b = Match::new(vec![
            Field::Metadata(5, None),
            Field::Ipv4Dst(
                Ipv4Addr::new(10, 0, 0, 0),
                Some(Ipv4Addr::new(255, 255, 255, 0)),
            ),
        ]);
        assert_eq!(a.canonical(), b.canonical());
    }

    #[test]
    fn canonical_order_puts_prerequisites_first() {
        // OVS parses OXM fields in order and checks each one's prerequisites against the
        // fields before it: nw_ttl (NXM class 1) must come after eth_type (class 0x8000),
        // nd_target after the ICMPv6 type, whatever the classes' numeric order.
        let m = Match::new(vec![
            Field::Ipv6NdTarget(Ipv6Addr::LOCALHOST, None),
            Field::IpTtl(1, None),
            Field::Icmpv6Type(135, None),
            Field::IpProto(58, None),
            Field::Reg(6, 1, None),
            Field::EthType(0x86dd, None),
        ])
        .into_canonical();
        let pos = |want: fn(&Field) -> bool| m.fields.iter().position(want).unwrap();
        let eth = pos(|f| matches!(f, Field::EthType(..)));
        let ttl = pos(|f| matches!(f, Field::IpTtl(..)));
        let proto = pos(|f| matches!(f, Field::IpProto(..)));
        let icmp = pos(|f| matches!(f, Field::Icmpv6Type(..)));
        let nd = pos(|f| matches!(f, Field::Ipv6NdTarget(..)));
        assert!(
            eth < ttl && eth < proto && proto < icmp && icmp < nd,
            "{:?}",
            m.fields
        );
    }

    #[test]
    fn into_canonical_equals_canonical() {
        let m = Match::new(vec![
            Field::Reg(6, 1, None),
            Field::EthDst(Mac::MULTICAST_BIT, Some(Mac::MULTICAST_BIT)),
            Field::Ipv4Dst(
                Ipv4Addr::new(10, 0, 0, 7),
                Some(Ipv4Addr::new(255, 255, 255, 0)),
            ),
            Field::Metadata(5, Some(u64::MAX)),
            Field::CtState(0x21, Some(0x21)),
        ]);
        assert_eq!(m.clone().into_canonical(), m.canonical());
        let sorted = m.canonical();
        assert_eq!(sorted.clone().into_canonical(), sorted);
    }

    #[test]
    fn canonical_ignores_order() {
        let a = Match::new(vec![Field::Reg(6, 1, None), Field::Metadata(5, None)]);
        let b = Match::new(vec![Field::Metadata(5, None), Field::Reg(6, 1, None)]);
        assert_ne!(a, b);
        assert_eq!(a.canonical(), b.canonical());
    }
}
