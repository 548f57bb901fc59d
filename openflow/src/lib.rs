//! OpenFlow 1.3 wire codec with the Nicira extensions Open vSwitch needs.
