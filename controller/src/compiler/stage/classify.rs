//! Table 0, classify: which logical switch and port a packet belongs to, from the VM
//! ofport it came in on or from the tunnel and its VNI.

use openflow::Field;

use super::{FlowBuilder, apply, goto, set};
use crate::compiler::ids::{cookie_for, tables};
use crate::model::LogicalPort;

impl FlowBuilder<'_> {
    /// A local port: its ofport sets metadata = VNI, reg6 = its key, reg13 = its zone.
    pub(super) fn classify_port(&mut self, vni: u32, p: &LogicalPort, ofport: u32) {
        self.add(
            tables::CLASSIFY,
            100,
            vec![Field::InPort(ofport, None)],
            vec![
                apply(vec![
                    set(Field::Metadata(u64::from(vni), None)),
                    set(Field::Reg(6, u32::from(p.key), None)),
                    set(Field::Reg(13, u32::from(p.zone), None)),
                ]),
                goto(tables::PORT_SECURITY),
            ],
            cookie_for(&p.id),
        );
    }

    /// Traffic of this switch from one remote node's tunnel: reg6 = 0 (from a tunnel),
    /// straight to the L2 lookup.
    pub(crate) fn classify_tunnel(&mut self, vni: u32, switch_cookie: u64, tun_ofport: u32) {
        self.add(
            tables::CLASSIFY,
            100,
            vec![
                Field::InPort(tun_ofport, None),
                Field::TunnelId(u64::from(vni), None),
            ],
            vec![
                apply(vec![
                    set(Field::Metadata(u64::from(vni), None)),
                    set(Field::Reg(6, 0, None)),
                ]),
                goto(tables::L2_LOOKUP),
            ],
            switch_cookie,
        );
    }
}
