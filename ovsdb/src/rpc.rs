//! JSON-RPC 1.0 messages as OVSDB uses them (RFC 7047 §4): requests with an id,
//! notifications (`"id": null`), and responses carrying both `result` and `error`, exactly
//! one of them null. Either side may send requests: ovsdb-server sends `echo`.

use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{Map, Value, json};

/// Why a JSON value is not a JSON-RPC 1.0 message.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RpcParseError {
    #[error("message is not a JSON object: {0}")]
    NotAnObject(String),
    #[error("message has neither \"method\" nor \"result\"/\"error\": {0}")]
    Unrecognised(String),
    #[error("response without an id: {0}")]
    ResponseWithoutId(String),
    #[error("\"method\" is not a string: {0}")]
    BadMethod(String),
}

/// An error returned by the peer: a JSON-RPC `error` member. OVSDB errors are objects with
/// `error` and optional `details`; plain JSON-RPC errors are often a bare string.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{error}{}", details.as_ref().map(|d| format!(": {d}")).unwrap_or_default())]
pub struct RpcError {
    pub error: String,
    pub details: Option<String>,
    /// The error member as received.
    pub raw: Value,
}

impl RpcError {
    pub fn from_json(v: &Value) -> RpcError {
        let (error, details) = match v {
            Value::String(s) => (s.clone(), None),
            Value::Object(o) => (
                o.get("error")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
                    .unwrap_or_else(|| v.to_string()),
                o.get("details").and_then(Value::as_str).map(str::to_owned),
            ),
            other => (other.to_string(), None),
        };
        RpcError {
            error,
            details,
            raw: v.clone(),
        }
    }
}

/// One JSON-RPC message.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    /// A call that expects a response with the same id.
    Request {
        id: Value,
        method: String,
        params: Value,
    },
    /// A call without a response (`"id": null`): `update`, `update2`, `locked`, `stolen`.
    Notification { method: String, params: Value },
    /// The answer to a request: `Ok(result)` when `error` is null.
    Response {
        id: Value,
        result: Result<Value, RpcError>,
    },
}

impl Message {
    pub fn from_json(v: Value) -> Result<Message, RpcParseError> {
        let Value::Object(mut o) = v else {
            return Err(RpcParseError::NotAnObject(v.to_string()));
        };
        let id = o.remove("id").unwrap_or(Value::Null);
        if let Some(method) = o.remove("method") {
            let Value::String(method) = method else {
                return Err(RpcParseError::BadMethod(method.to_string()));
            };
            let params = o.remove("params").unwrap_or(Value::Array(Vec::new()));
            return Ok(if id.is_null() {
                Message::Notification { method, params }
            } else {
                Message::Request { id, method, params }
            });
        }
        if o.contains_key("result") || o.contains_key("error") {
            if id.is_null() {
                return Err(RpcParseError::ResponseWithoutId(
                    Value::Object(o).to_string(),
                ));
            }
            let error = o.remove("error").unwrap_or(Value::Null);
            let result = if error.is_null() {
                Ok(o.remove("result").unwrap_or(Value::Null))
            } else {
                Err(RpcError::from_json(&error))
            };
            return Ok(Message::Response { id, result });
        }
        let mut o: Map<String, Value> = o;
        o.insert("id".into(), id);
        Err(RpcParseError::Unrecognised(Value::Object(o).to_string()))
    }

    pub fn to_json(&self) -> Value {
        match self {
            Message::Request { id, method, params } => {
                json!({"id": id, "method": method, "params": params})
            }
            Message::Notification { method, params } => {
                json!({"id": null, "method": method, "params": params})
            }
            Message::Response { id, result } => match result {
                Ok(r) => json!({"id": id, "result": r, "error": null}),
                Err(e) => json!({"id": id, "result": null, "error": e.raw}),
            },
        }
    }
}

/// Writes the same JSON as [`Message::to_json`] (members in the same, sorted, order)
/// without first copying the params into a new [`Value`]: a transaction's params can be
/// hundreds of operations, and the codec encodes every message it sends this way.
impl Serialize for Message {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut m = serializer.serialize_map(Some(3))?;
        match self {
            Message::Request { id, method, params } => {
                m.serialize_entry("id", id)?;
                m.serialize_entry("method", method)?;
                m.serialize_entry("params", params)?;
            }
            Message::Notification { method, params } => {
                m.serialize_entry("id", &Value::Null)?;
                m.serialize_entry("method", method)?;
                m.serialize_entry("params", params)?;
            }
            Message::Response { id, result } => {
                let (result, error) = match result {
                    Ok(r) => (r, &Value::Null),
                    Err(e) => (&Value::Null, &e.raw),
                };
                m.serialize_entry("error", error)?;
                m.serialize_entry("id", id)?;
                m.serialize_entry("result", result)?;
            }
        }
        m.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serializes_as_to_json_does() {
        let raw = json!({"error": "syntax error", "details": "bad"});
        for m in [
            Message::Request {
                id: json!(7),
                method: "transact".into(),
                params: json!(["Open_vSwitch", {"op": "insert", "table": "Port", "row": {"name": "p"}}]),
            },
            Message::Notification {
                method: "update2".into(),
                params: json!([null, {"Port": {}}]),
            },
            Message::Response {
                id: json!("echo"),
                result: Ok(json!([])),
            },
            Message::Response {
                id: json!(3),
                result: Err(RpcError::from_json(&raw)),
            },
        ] {
            assert_eq!(
                serde_json::to_string(&m).unwrap(),
                serde_json::to_string(&m.to_json()).unwrap()
            );
        }
    }

    #[test]
    fn classifies_messages() {
        let m = Message::from_json(json!({"id": "echo", "method": "echo", "params": []})).unwrap();
        assert!(matches!(m, Message::Request { ref method, .. } if method == "echo"));
        let m =
            Message::from_json(json!({"id": null, "method": "update2", "params": [1]})).unwrap();
        assert!(matches!(m, Message::Notification { .. }));
        let m = Message::from_json(
            json!({"id": 3, "result": null, "error": {"error": "syntax error", "details": "bad"}}),
        )
        .unwrap();
        match m {
            Message::Response { result: Err(e), .. } => {
                assert_eq!(e.error, "syntax error");
                assert_eq!(e.to_string(), "syntax error: bad");
            }
            other => panic!("{other:?}"),
        }
        let m = Message::from_json(json!({"id": 3, "error": "unknown method", "result": null}))
            .unwrap();
        assert!(
            matches!(m, Message::Response { result: Err(RpcError { ref error, .. }), .. } if error == "unknown method")
        );
        assert!(Message::from_json(json!({"result": 1, "error": null})).is_err());
        assert!(Message::from_json(json!([1])).is_err());
        assert!(Message::from_json(json!({"id": 1})).is_err());
    }
}
