//! API-level errors and their JSON-RPC codes (DESIGN.md §5).
//!
//! Every failure a client can cause or observe maps to exactly one [`ApiError`] variant,
//! and every variant names what went wrong (the parameter, the object) so that the message
//! alone is enough to fix the request.

use jsonrpsee::types::ErrorObjectOwned;
use serde_json::json;

/// JSON-RPC "invalid params".
pub const INVALID_PARAMS: i32 = -32602;
/// An object named in the request does not exist.
pub const NOT_FOUND: i32 = -32004;
/// The request contradicts existing state (duplicate name, VNI, MAC; switch has ports).
pub const CONFLICT: i32 = -32009;
/// The durable store could not commit (or is shutting down); nothing was changed.
pub const STORE_UNAVAILABLE: i32 = -32010;
/// The feature needs southbound data or a component that is not running yet.
pub const UNAVAILABLE: i32 = -32011;
/// A bug in Weft.
pub const INTERNAL: i32 = -32603;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// A parameter is missing, has the wrong type, or has an invalid value.
    #[error("invalid params: {field}: {message}")]
    InvalidParams { field: String, message: String },
    /// The object `what` (a name or id) named by parameter `field` does not exist.
    #[error("{kind} {what:?} not found")]
    NotFound {
        field: String,
        kind: String,
        what: String,
    },
    /// The write would break a uniqueness or containment rule.
    #[error("conflict: {message}")]
    Conflict { field: String, message: String },
    #[error("store unavailable: {0}")]
    StoreUnavailable(String),
    #[error("not available: {0}")]
    Unavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    pub fn invalid(field: impl Into<String>, message: impl ToString) -> Self {
        ApiError::InvalidParams {
            field: field.into(),
            message: message.to_string(),
        }
    }

    pub fn not_found(field: &str, kind: &str, what: &str) -> Self {
        ApiError::NotFound {
            field: field.to_string(),
            kind: kind.to_string(),
            what: what.chars().take(128).collect(),
        }
    }

    pub fn conflict(field: impl Into<String>, message: impl ToString) -> Self {
        ApiError::Conflict {
            field: field.into(),
            message: message.to_string(),
        }
    }

    pub fn code(&self) -> i32 {
        match self {
            ApiError::InvalidParams { .. } => INVALID_PARAMS,
            ApiError::NotFound { .. } => NOT_FOUND,
            ApiError::Conflict { .. } => CONFLICT,
            ApiError::StoreUnavailable(_) => STORE_UNAVAILABLE,
            ApiError::Unavailable(_) => UNAVAILABLE,
            ApiError::Internal(_) => INTERNAL,
        }
    }
}

impl From<ApiError> for ErrorObjectOwned {
    fn from(e: ApiError) -> Self {
        let data = match &e {
            ApiError::InvalidParams { field, .. } => Some(json!({ "field": field })),
            ApiError::NotFound { field, kind, what } => {
                Some(json!({ "field": field, "kind": kind, "value": what }))
            }
            ApiError::Conflict { field, .. } => Some(json!({ "field": field })),
            _ => None,
        };
        ErrorObjectOwned::owned(e.code(), e.to_string(), data)
    }
}
