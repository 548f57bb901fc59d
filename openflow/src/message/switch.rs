//! The switch as a whole: FEATURES (datapath id, tables, capabilities), the switch
//! configuration (GET_CONFIG / SET_CONFIG) and TABLE_MOD.

use bytes::{BufMut, BytesMut};

use super::expect_len;
use crate::error::Result;
use crate::wire::{Reader, put_zeros};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SwitchFeatures {
    pub datapath_id: u64,
    pub n_buffers: u32,
    pub n_tables: u8,
    pub auxiliary_id: u8,
    pub capabilities: u32,
    pub reserved: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SwitchConfig {
    pub flags: u16,
    pub miss_send_len: u16,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableMod {
    pub table_id: u8,
    pub config: u32,
}

impl SwitchFeatures {
    pub(super) fn parse(r: &mut Reader<'_>) -> Result<Self> {
        expect_len(r, 24, "features reply")?;
        let datapath_id = r.u64("datapath_id")?;
        let n_buffers = r.u32("n_buffers")?;
        let n_tables = r.u8("n_tables")?;
        let auxiliary_id = r.u8("auxiliary_id")?;
        r.skip(2, "pad")?;
        Ok(SwitchFeatures {
            datapath_id,
            n_buffers,
            n_tables,
            auxiliary_id,
            capabilities: r.u32("capabilities")?,
            reserved: r.u32("reserved")?,
        })
    }

    pub(super) fn emit(&self, buf: &mut BytesMut) {
        buf.put_u64(self.datapath_id);
        buf.put_u32(self.n_buffers);
        buf.put_u8(self.n_tables);
        buf.put_u8(self.auxiliary_id);
        put_zeros(buf, 2);
        buf.put_u32(self.capabilities);
        buf.put_u32(self.reserved);
    }
}

impl SwitchConfig {
    pub(super) fn parse(r: &mut Reader<'_>) -> Result<Self> {
        expect_len(r, 4, "switch config")?;
        Ok(SwitchConfig {
            flags: r.u16("flags")?,
            miss_send_len: r.u16("miss_send_len")?,
        })
    }

    pub(super) fn emit(&self, buf: &mut BytesMut) {
        buf.put_u16(self.flags);
        buf.put_u16(self.miss_send_len);
    }
}

impl TableMod {
    pub(super) fn parse(r: &mut Reader<'_>) -> Result<Self> {
        expect_len(r, 8, "table mod")?;
        let table_id = r.u8("table_id")?;
        r.skip(3, "pad")?;
        Ok(TableMod {
            table_id,
            config: r.u32("config")?,
        })
    }

    pub(super) fn emit(&self, buf: &mut BytesMut) {
        buf.put_u8(self.table_id);
        put_zeros(buf, 3);
        buf.put_u32(self.config);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::testing::*;
    use crate::message::{Message, ofpt};

    #[test]
    fn features_and_config() {
        check(
            &with_header(ofpt::FEATURES_REQUEST, &[]),
            msg(Message::FeaturesRequest),
        );
        let body = [
            0, 0, 0, 0, 0, 0, 0, 0x01, // datapath_id 1
            0x00, 0x00, 0x01, 0x00, // n_buffers 256
            0xfe, // n_tables 254
            0x00, // auxiliary_id
            0x00, 0x00, // pad
            0x00, 0x00, 0x00, 0x4f, // capabilities
            0x00, 0x00, 0x00, 0x00, // reserved
        ];
        check(
            &with_header(ofpt::FEATURES_REPLY, &body),
            msg(Message::FeaturesReply(SwitchFeatures {
                datapath_id: 1,
                n_buffers: 256,
                n_tables: 254,
                auxiliary_id: 0,
                capabilities: 0x4f,
                reserved: 0,
            })),
        );
        check(
            &with_header(ofpt::GET_CONFIG_REQUEST, &[]),
            msg(Message::GetConfigRequest),
        );
        let cfg = [
            0x00, 0x00, /* flags */
            0xff, 0xe5, /* miss_send_len */
        ];
        let c = SwitchConfig {
            flags: 0,
            miss_send_len: 0xffe5,
        };
        check(
            &with_header(ofpt::SET_CONFIG, &cfg),
            msg(Message::SetConfig(c)),
        );
        check(
            &with_header(ofpt::GET_CONFIG_REPLY, &cfg),
            msg(Message::GetConfigReply(c)),
        );
    }

    #[test]
    fn table_mod() {
        let body = [
            0xff, /* all tables */
            0, 0, 0, /* pad */
            0, 0, 0, 0, /* config */
        ];
        check(
            &with_header(ofpt::TABLE_MOD, &body),
            msg(Message::TableMod(TableMod {
                table_id: 0xff,
                config: 0,
            })),
        );
    }
}
