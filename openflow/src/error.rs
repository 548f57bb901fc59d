//! The one error type of the codec: every variant says what was wrong and where (byte offset
//! from the start of the buffer handed to the decoder), so a bad message from a switch can be
//! reported precisely instead of as "parse error".

/// Why bytes could not be decoded, or a value could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The buffer ends before a structure does.
    #[error("truncated {what} at offset {offset}: need {need} bytes, have {have}")]
    Truncated {
        what: &'static str,
        offset: usize,
        need: usize,
        have: usize,
    },
    /// A length field is impossible (too small for its header, or past its container).
    #[error("bad length {len} for {what} at offset {offset}")]
    BadLength {
        what: &'static str,
        offset: usize,
        len: usize,
    },
    /// A field holds a value this codec cannot represent.
    #[error("bad value {value:#x} for {what} at offset {offset}")]
    BadValue {
        what: &'static str,
        offset: usize,
        value: u64,
    },
    /// An encoded message would not fit OpenFlow's 16-bit length field.
    #[error("{what} too long to encode: {len} bytes (max {max})")]
    TooLong {
        what: &'static str,
        len: usize,
        max: usize,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
