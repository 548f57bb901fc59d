//! OVSDB (RFC 7047) client: framing, schema, datum, operations, monitor replica.
