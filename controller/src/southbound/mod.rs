pub mod openflow;
