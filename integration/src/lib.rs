//! End-to-end lab tooling and tests against real Open vSwitch.
