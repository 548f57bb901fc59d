//! OpenFlow 1.3 wire codec with the Nicira/ONF extensions Open vSwitch needs (registers,
//! tunnels, conntrack, bundles). Sans-IO: [`OfpMessage::decode`] parses from `&[u8]`,
//! [`OfpMessage::encode`] appends to a `BytesMut`; framing on a byte stream is in
//! [`codec`] (feature `codec`). Text output in `ovs-ofctl` style is in [`print`].
//!
//! Modules: [`oxm`] (match fields, [`Field`], [`Match`]), [`action`] ([`Action`],
//! [`Nicira`]), [`instruction`], [`message`] (every message type), [`flow`] (constructors
//! and flow identity for diffing), [`validate`] (prerequisite checks of matches, and of
//! actions against their match), [`print`], [`table`] (the software flow table and packet
//! walker), [`session`] (the sans-IO session with one switch: handshake, echo, barriers,
//! multipart), [`digest`] (digests of flows in wire form, to compare a dump with wanted
//! flows without decoding it).
//!
//! ```
//! use openflow::*;
//! let fm = FlowMod::add(
//!     30,
//!     100,
//!     Match::new(vec![Field::Metadata(0x1389, None), Field::EthDst(Mac([2, 0, 0, 0, 0, 1]), None)]),
//!     vec![Instruction::ApplyActions(vec![
//!         Action::SetField(Field::TunnelId(0x1389, None)),
//!         Action::output(3),
//!     ])],
//! )
//! .with_cookie(5);
//! assert_eq!(
//!     fm.to_string(),
//!     "cookie=0x5, table=30, priority=100,metadata=0x1389,dl_dst=02:00:00:00:00:01 \
//!      actions=set_field:0x1389->tun_id,output:3"
//! );
//! let bytes = fm.clone().into_message(7).to_bytes().unwrap();
//! assert_eq!(OfpMessage::decode(&bytes).unwrap().body, Message::FlowMod(fm));
//! assert!(matches!(roundtrip(&bytes), RoundTrip::Exact { raw_parts: 0, .. }));
//! ```

pub mod action;
#[cfg(feature = "codec")]
pub mod codec;
pub mod digest;
pub mod error;
pub mod flow;
pub mod instruction;
pub mod message;
pub mod oxm;
pub mod print;
pub mod session;
pub mod table;
pub mod types;
pub mod validate;
mod wire;

pub use action::{
    Action, Controller2Prop, Ct, CtZone, Learn, LearnDst, LearnSpec, LearnSrc, Nat, Nicira,
    Subfield,
};
pub use error::{Error, Result};
pub use flow::{FlowContent, FlowKey};
pub use instruction::Instruction;
pub use message::*;
pub use oxm::{Field, FieldHeader, Match, RawField, U128Be};
pub use print::{RoundTrip, ofp_print, parse_hex, roundtrip};
pub use types::{Mac, port};
pub use wire::{Emit, FixedStr};
