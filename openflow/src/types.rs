//! Small shared value types and well-known numbers (reserved ports, groups, tables).

use std::fmt;

/// An Ethernet address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Mac(pub [u8; 6]);

/// Byte order, as a derived `Ord` would give, but as one integer comparison rather than a
/// `memcmp` call: flow keys of a node's L2 and ARP tables differ mostly in a MAC, and
/// every map of flows compares thousands of them.
impl Ord for Mac {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        let int = |m: &Mac| {
            let [a, b, c, d, e, f] = m.0;
            u64::from_be_bytes([0, 0, a, b, c, d, e, f])
        };
        int(self).cmp(&int(other))
    }
}

impl PartialOrd for Mac {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Mac {
    pub const BROADCAST: Mac = Mac([0xff; 6]);
    pub const ZERO: Mac = Mac([0; 6]);
    /// The multicast bit alone, as value or mask (`01:00:00:00:00:00`).
    pub const MULTICAST_BIT: Mac = Mac([1, 0, 0, 0, 0, 0]);
}

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        )
    }
}

impl std::str::FromStr for Mac {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let mut out = [0u8; 6];
        let mut n = 0;
        for part in s.split(':') {
            let slot = out.get_mut(n).ok_or_else(|| format!("bad MAC {s:?}"))?;
            *slot = u8::from_str_radix(part, 16).map_err(|_| format!("bad MAC {s:?}"))?;
            n += 1;
        }
        if n != 6 {
            return Err(format!("bad MAC {s:?}"));
        }
        Ok(Mac(out))
    }
}

/// OpenFlow 1.3 reserved port numbers (32-bit).
pub mod port {
    pub const MAX: u32 = 0xffff_ff00;
    pub const IN_PORT: u32 = 0xffff_fff8;
    pub const TABLE: u32 = 0xffff_fff9;
    pub const NORMAL: u32 = 0xffff_fffa;
    pub const FLOOD: u32 = 0xffff_fffb;
    pub const ALL: u32 = 0xffff_fffc;
    pub const CONTROLLER: u32 = 0xffff_fffd;
    pub const LOCAL: u32 = 0xffff_fffe;
    pub const ANY: u32 = 0xffff_ffff;

    /// OVS's name for a reserved port, as `ovs-ofctl` prints it.
    pub fn name(p: u32) -> Option<&'static str> {
        Some(match p {
            IN_PORT => "IN_PORT",
            TABLE => "TABLE",
            NORMAL => "NORMAL",
            FLOOD => "FLOOD",
            ALL => "ALL",
            CONTROLLER => "CONTROLLER",
            LOCAL => "LOCAL",
            ANY => "ANY",
            _ => return None,
        })
    }

    /// Formats a 32-bit port the way `ovs-ofctl` does (number or reserved name).
    pub fn format(p: u32) -> String {
        name(p).map(str::to_owned).unwrap_or_else(|| p.to_string())
    }

    /// OpenFlow 1.0 (16-bit) port, as Nicira actions carry them, widened to 32 bits.
    pub fn from_ofp10(p: u16) -> u32 {
        if p >= 0xff00 {
            u32::from(p) + 0xffff_0000
        } else {
            u32::from(p)
        }
    }

    /// 32-bit port narrowed to the 16-bit form Nicira actions carry.
    pub fn to_ofp10(p: u32) -> u16 {
        if p >= MAX {
            (p & 0xffff) as u16
        } else {
            p.min(0xff00 - 1) as u16
        }
    }
}

/// Reserved group numbers.
pub mod group {
    pub const MAX: u32 = 0xffff_ff00;
    pub const ALL: u32 = 0xffff_fffc;
    pub const ANY: u32 = 0xffff_ffff;
}

/// Reserved table number: all tables (flow-stats requests, deletes).
pub const TABLE_ALL: u8 = 0xff;
/// `buffer_id` meaning "no buffered packet".
pub const NO_BUFFER: u32 = 0xffff_ffff;
/// Nicira's experimenter id (OUI 00:23:20).
pub const NX_VENDOR_ID: u32 = 0x0000_2320;
/// The ONF experimenter id ("ONF\0").
pub const ONF_VENDOR_ID: u32 = 0x4f4e_4600;

#[cfg(test)]
mod tests {
    use super::Mac;

    #[test]
    fn mac_orders_as_its_bytes() {
        let macs = [
            Mac([0, 0, 0, 0, 0, 0]),
            Mac([0, 0, 0, 0, 0, 1]),
            Mac([0, 0, 0, 0, 1, 0]),
            Mac([1, 0, 0, 0, 0, 0]),
            Mac([2, 0xff, 0, 0, 0, 9]),
            Mac([2, 0xff, 0, 0, 1, 0]),
            Mac([0xff; 6]),
        ];
        for a in &macs {
            for b in &macs {
                assert_eq!(a.cmp(b), a.0.cmp(&b.0), "{a:?} vs {b:?}");
            }
        }
    }
}
