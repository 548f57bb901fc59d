//! Switch ports: the `ofp_port` description, PORT_STATUS (a port added, removed or
//! changed) and PORT_MOD.

use bytes::{BufMut, BytesMut};

use super::expect_len;
use crate::error::Result;
use crate::types::Mac;
use crate::wire::{FixedStr, Reader, put_fixed_str, put_zeros, read_fixed_str, wire_enum};

wire_enum! {
    pub enum PortReason: u8 { Add = 0, Delete = 1, Modify = 2, }
}

/// `ofp_port`: a port's description.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Port {
    pub port_no: u32,
    pub hw_addr: Mac,
    pub name: FixedStr,
    pub config: u32,
    pub state: u32,
    pub curr: u32,
    pub advertised: u32,
    pub supported: u32,
    pub peer: u32,
    pub curr_speed: u32,
    pub max_speed: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortStatus {
    pub reason: PortReason,
    pub desc: Port,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortMod {
    pub port_no: u32,
    pub hw_addr: Mac,
    pub config: u32,
    pub mask: u32,
    pub advertise: u32,
}

pub(super) fn parse_port(r: &mut Reader<'_>) -> Result<Port> {
    let port_no = r.u32("port_no")?;
    r.skip(4, "pad")?;
    let hw_addr = Mac(r.array("hw_addr")?);
    r.skip(2, "pad")?;
    let name = read_fixed_str(r, 16, "port name")?;
    Ok(Port {
        port_no,
        hw_addr,
        name,
        config: r.u32("config")?,
        state: r.u32("state")?,
        curr: r.u32("curr")?,
        advertised: r.u32("advertised")?,
        supported: r.u32("supported")?,
        peer: r.u32("peer")?,
        curr_speed: r.u32("curr_speed")?,
        max_speed: r.u32("max_speed")?,
    })
}

pub(super) fn emit_port(p: &Port, buf: &mut BytesMut) {
    buf.put_u32(p.port_no);
    put_zeros(buf, 4);
    buf.put_slice(&p.hw_addr.0);
    put_zeros(buf, 2);
    put_fixed_str(buf, &p.name, 16);
    for v in [
        p.config,
        p.state,
        p.curr,
        p.advertised,
        p.supported,
        p.peer,
        p.curr_speed,
        p.max_speed,
    ] {
        buf.put_u32(v);
    }
}

impl PortStatus {
    pub(super) fn parse(r: &mut Reader<'_>) -> Result<Self> {
        expect_len(r, 72, "port status")?;
        let reason = PortReason::from(r.u8("reason")?);
        r.skip(7, "pad")?;
        Ok(PortStatus {
            reason,
            desc: parse_port(r)?,
        })
    }

    pub(super) fn emit(&self, buf: &mut BytesMut) {
        buf.put_u8(self.reason.into());
        put_zeros(buf, 7);
        emit_port(&self.desc, buf);
    }
}

impl PortMod {
    pub(super) fn parse(r: &mut Reader<'_>) -> Result<Self> {
        expect_len(r, 32, "port mod")?;
        let port_no = r.u32("port_no")?;
        r.skip(4, "pad")?;
        let hw_addr = Mac(r.array("hw_addr")?);
        r.skip(2, "pad")?;
        let config = r.u32("config")?;
        let mask = r.u32("mask")?;
        let advertise = r.u32("advertise")?;
        Ok(PortMod {
            port_no,
            hw_addr,
            config,
            mask,
            advertise,
        })
    }

    pub(super) fn emit(&self, buf: &mut BytesMut) {
        buf.put_u32(self.port_no);
        put_zeros(buf, 4);
        buf.put_slice(&self.hw_addr.0);
        put_zeros(buf, 2);
        buf.put_u32(self.config);
        buf.put_u32(self.mask);
        buf.put_u32(self.advertise);
        put_zeros(buf, 4);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::testing::*;
    use crate::message::{Message, ofpt};

    #[test]
    fn port_status() {
        let mut body = vec![
            0x00, // reason: add
            0, 0, 0, 0, 0, 0, 0, // pad
            0x00, 0x00, 0x00, 0x03, // port_no 3
            0, 0, 0, 0, // pad
            0x02, 0, 0, 0, 0, 0x03, // hw_addr
            0, 0, // pad
        ];
        body.extend_from_slice(b"vm1\0\0\0\0\0\0\0\0\0\0\0\0\0"); // name[16]
        body.extend_from_slice(&[
            0, 0, 0, 0, // config
            0, 0, 0, 4, // state: live
            0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
            0, // curr, advertised, supported, peer
            0, 0, 0x27, 0x10, // curr_speed 10000
            0, 0, 0, 0, // max_speed
        ]);
        check(
            &with_header(ofpt::PORT_STATUS, &body),
            msg(Message::PortStatus(PortStatus {
                reason: PortReason::Add,
                desc: Port {
                    port_no: 3,
                    hw_addr: Mac([2, 0, 0, 0, 0, 3]),
                    name: "vm1".into(),
                    state: 4,
                    curr_speed: 10000,
                    ..Port::default()
                },
            })),
        );
    }

    #[test]
    fn port_mod() {
        let body = [
            0x00, 0x00, 0x00, 0x03, // port 3
            0, 0, 0, 0, // pad
            0x02, 0, 0, 0, 0, 0x03, // hw_addr
            0, 0, // pad
            0x00, 0x00, 0x00, 0x01, // config: port down
            0x00, 0x00, 0x00, 0x01, // mask
            0x00, 0x00, 0x00, 0x00, // advertise
            0, 0, 0, 0, // pad
        ];
        check(
            &with_header(ofpt::PORT_MOD, &body),
            msg(Message::PortMod(PortMod {
                port_no: 3,
                hw_addr: Mac([2, 0, 0, 0, 0, 3]),
                config: 1,
                mask: 1,
                advertise: 0,
            })),
        );
    }
}
