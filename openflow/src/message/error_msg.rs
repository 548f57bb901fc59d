//! ERROR: a switch's answer to a request it could not apply, with OVS's names for the
//! standard error types and codes.

use bytes::{BufMut, BytesMut};

use super::OfpMessage;
use crate::error::Result;
use crate::wire::{Reader, wire_enum};

wire_enum! {
    /// `ofp_error_msg.type`.
    pub enum ErrorType: u16 {
        HelloFailed = 0, BadRequest = 1, BadAction = 2, BadInstruction = 3, BadMatch = 4,
        FlowModFailed = 5, GroupModFailed = 6, PortModFailed = 7, TableModFailed = 8,
        QueueOpFailed = 9, SwitchConfigFailed = 10, RoleRequestFailed = 11,
        MeterModFailed = 12, TableFeaturesFailed = 13,
    }
}

/// Error type and code: standard, or experimenter-defined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    Standard { err_type: ErrorType, code: u16 },
    Experimenter { exp_type: u16, experimenter: u32 },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorMsg {
    pub kind: ErrorKind,
    /// Usually (the start of) the offending request.
    pub data: Vec<u8>,
}

/// OpenFlow's name for an error type/code pair (`OFPBMC_BAD_PREREQ`), as OVS prints it;
/// unnamed codes print as `OFPET<type>_CODE<code>`-style numbers.
pub fn error_name(err_type: ErrorType, code: u16) -> String {
    const HELLO: &[&str] = &["INCOMPATIBLE", "EPERM"];
    const REQ: &[&str] = &[
        "BAD_VERSION",
        "BAD_TYPE",
        "BAD_MULTIPART",
        "BAD_EXPERIMENTER",
        "BAD_EXP_TYPE",
        "EPERM",
        "BAD_LEN",
        "BUFFER_EMPTY",
        "BUFFER_UNKNOWN",
        "BAD_TABLE_ID",
        "IS_SLAVE",
        "BAD_PORT",
        "BAD_PACKET",
        "MULTIPART_BUFFER_OVERFLOW",
    ];
    const ACT: &[&str] = &[
        "BAD_TYPE",
        "BAD_LEN",
        "BAD_EXPERIMENTER",
        "BAD_EXP_TYPE",
        "BAD_OUT_PORT",
        "BAD_ARGUMENT",
        "EPERM",
        "TOO_MANY",
        "BAD_QUEUE",
        "BAD_OUT_GROUP",
        "MATCH_INCONSISTENT",
        "UNSUPPORTED_ORDER",
        "BAD_TAG",
        "BAD_SET_TYPE",
        "BAD_SET_LEN",
        "BAD_SET_ARGUMENT",
    ];
    const INST: &[&str] = &[
        "UNKNOWN_INST",
        "UNSUP_INST",
        "BAD_TABLE_ID",
        "UNSUP_METADATA",
        "UNSUP_METADATA_MASK",
        "BAD_EXPERIMENTER",
        "BAD_EXP_TYPE",
        "BAD_LEN",
        "EPERM",
    ];
    const MATCH: &[&str] = &[
        "BAD_TYPE",
        "BAD_LEN",
        "BAD_TAG",
        "BAD_DL_ADDR_MASK",
        "BAD_NW_ADDR_MASK",
        "BAD_WILDCARDS",
        "BAD_FIELD",
        "BAD_VALUE",
        "BAD_MASK",
        "BAD_PREREQ",
        "DUP_FIELD",
        "EPERM",
    ];
    const FLOW: &[&str] = &[
        "UNKNOWN",
        "TABLE_FULL",
        "BAD_TABLE_ID",
        "OVERLAP",
        "EPERM",
        "BAD_TIMEOUT",
        "BAD_COMMAND",
        "BAD_FLAGS",
    ];
    const GROUP: &[&str] = &[
        "GROUP_EXISTS",
        "INVALID_GROUP",
        "WEIGHT_UNSUPPORTED",
        "OUT_OF_GROUPS",
        "OUT_OF_BUCKETS",
        "CHAINING_UNSUPPORTED",
        "WATCH_UNSUPPORTED",
        "LOOP",
        "UNKNOWN_GROUP",
        "CHAINED_GROUP",
        "BAD_TYPE",
        "BAD_COMMAND",
        "BAD_BUCKET",
        "BAD_WATCH",
        "EPERM",
    ];
    let (prefix, names) = match err_type {
        ErrorType::HelloFailed => ("OFPHFC", HELLO),
        ErrorType::BadRequest => ("OFPBRC", REQ),
        ErrorType::BadAction => ("OFPBAC", ACT),
        ErrorType::BadInstruction => ("OFPBIC", INST),
        ErrorType::BadMatch => ("OFPBMC", MATCH),
        ErrorType::FlowModFailed => ("OFPFMFC", FLOW),
        ErrorType::GroupModFailed => ("OFPGMFC", GROUP),
        other => return format!("{other:?}(code={code})"),
    };
    match names.get(usize::from(code)) {
        Some(n) => format!("{prefix}_{n}"),
        None => format!("{err_type:?}(code={code})"),
    }
}

impl ErrorMsg {
    /// The offending message carried in `data`, when it is complete enough to decode.
    pub fn offending(&self) -> Option<OfpMessage> {
        OfpMessage::decode(&self.data).ok()
    }
}

impl ErrorMsg {
    pub(super) fn parse(r: &mut Reader<'_>) -> Result<Self> {
        let t = r.u16("error type")?;
        let kind = if t == 0xffff {
            let exp_type = r.u16("error exp_type")?;
            ErrorKind::Experimenter {
                exp_type,
                experimenter: r.u32("error experimenter")?,
            }
        } else {
            ErrorKind::Standard {
                err_type: ErrorType::from(t),
                code: r.u16("error code")?,
            }
        };
        Ok(ErrorMsg {
            kind,
            data: r.take_rest().to_vec(),
        })
    }

    pub(super) fn emit(&self, buf: &mut BytesMut) {
        match self.kind {
            ErrorKind::Standard { err_type, code } => {
                buf.put_u16(err_type.into());
                buf.put_u16(code);
            }
            ErrorKind::Experimenter {
                exp_type,
                experimenter,
            } => {
                buf.put_u16(0xffff);
                buf.put_u16(exp_type);
                buf.put_u32(experimenter);
            }
        }
        buf.put_slice(&self.data);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::testing::*;
    use crate::message::{Message, ofpt};

    #[test]
    fn error_with_offending_message() {
        let body = [
            0x00, 0x05, // OFPET_FLOW_MOD_FAILED
            0x00, 0x01, // code 1 (table full)
            0x04, 0x14, 0x00, 0x08, 0x12, 0x34, 0x56, 0x78, // the offending BARRIER_REQUEST
        ];
        let m = msg(Message::Error(ErrorMsg {
            kind: ErrorKind::Standard {
                err_type: ErrorType::FlowModFailed,
                code: 1,
            },
            data: body[4..].to_vec(),
        }));
        check(&with_header(ofpt::ERROR, &body), m.clone());
        let Message::Error(e) = m.body else {
            unreachable!()
        };
        assert_eq!(e.offending(), Some(msg(Message::BarrierRequest)));
    }
}
