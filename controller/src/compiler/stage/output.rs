//! Table 50, output: the logical output port (reg7) to its ofport.

use openflow::{Action, Field};

use super::{FlowBuilder, apply};
use crate::compiler::ids::{cookie_for, tables};
use crate::model::LogicalPort;

impl FlowBuilder<'_> {
    pub(super) fn output(&mut self, vni: u32, p: &LogicalPort, ofport: u32) {
        self.add(
            tables::OUTPUT,
            100,
            vec![
                Field::Metadata(u64::from(vni), None),
                Field::Reg(7, u32::from(p.key), None),
            ],
            vec![apply(vec![Action::output(ofport)])],
            cookie_for(&p.id),
        );
    }
}
