pub mod ovsdb;
