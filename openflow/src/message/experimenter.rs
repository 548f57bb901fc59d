//! EXPERIMENTER messages: the generic form, and the dispatch of the ONF extensions this
//! codec types (bundles) to their own messages. Also home of the echo test, the other
//! message kind whose body is opaque bytes.

use bytes::{BufMut, BytesMut};

use super::Message;
use super::bundle::{BundleAdd, BundleControl, ONFT_BUNDLE_ADD_MESSAGE, ONFT_BUNDLE_CONTROL};
use crate::error::Result;
use crate::types::ONF_VENDOR_ID;
use crate::wire::Reader;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Experimenter {
    pub experimenter: u32,
    pub exp_type: u32,
    pub data: Vec<u8>,
}

/// Parses an EXPERIMENTER body: ONF bundle messages become their typed messages, every
/// other experimenter message stays generic. `depth` bounds bundle-add nesting.
pub(super) fn parse(r: &mut Reader<'_>, depth: usize) -> Result<Message> {
    let experimenter = r.u32("experimenter id")?;
    let exp_type = r.u32("experimenter type")?;
    Ok(
        if experimenter == ONF_VENDOR_ID && exp_type == ONFT_BUNDLE_CONTROL {
            Message::BundleControl(BundleControl::parse(r)?)
        } else if experimenter == ONF_VENDOR_ID && exp_type == ONFT_BUNDLE_ADD_MESSAGE {
            Message::BundleAdd(BundleAdd::parse(r, depth)?)
        } else {
            Message::Experimenter(Experimenter {
                experimenter,
                exp_type,
                data: r.take_rest().to_vec(),
            })
        },
    )
}

impl Experimenter {
    pub(super) fn emit(&self, buf: &mut BytesMut) {
        buf.put_u32(self.experimenter);
        buf.put_u32(self.exp_type);
        buf.put_slice(&self.data);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::testing::*;
    use crate::message::{Message, ofpt};

    #[test]
    fn echo_and_experimenter() {
        check(
            &with_header(ofpt::ECHO_REQUEST, &[0xde, 0xad, 0xbe, 0xef]),
            msg(Message::EchoRequest(vec![0xde, 0xad, 0xbe, 0xef])),
        );
        check(
            &with_header(ofpt::ECHO_REPLY, &[]),
            msg(Message::EchoReply(vec![])),
        );
        let body = [
            0x00, 0x00, 0x23, 0x20, // experimenter: Nicira
            0x00, 0x00, 0x00, 0x0a, // exp_type 10
            0x01, 0x02, 0x03, 0x04, // data
        ];
        check(
            &with_header(ofpt::EXPERIMENTER, &body),
            msg(Message::Experimenter(Experimenter {
                experimenter: 0x2320,
                exp_type: 10,
                data: vec![1, 2, 3, 4],
            })),
        );
    }
}
