//! What the client's actor reads: whole frames, turned into [`Message`]s, except that
//! table-updates are kept as JSON text instead of being built as a `Value`, for the
//! replica to decode with the schema's types: the result of a reply whose caller wants
//! text (a monitor reply), and the updates of an `update` or `update2` notification. At a
//! thousand hypervisors' cold start these notifications (each new tunnel's rows, then
//! their ofports) were a tenth of weftd's CPU, most of it building and dropping `Value`s.

use bytes::BytesMut;
use serde::{Deserialize, Deserializer};
use serde_json::Value;
use serde_json::value::RawValue;
use tokio::sync::oneshot;
use tokio_util::codec::{Decoder, Encoder};

use crate::codec::{CodecError, JsonCodec};
use crate::monitor::TableUpdates;
use crate::rpc::{Message, RpcError};

/// [`JsonCodec`]'s framing, yielding the frames unparsed.
#[derive(Debug)]
pub(crate) struct FrameCodec(pub JsonCodec);

impl Decoder for FrameCodec {
    type Item = BytesMut;
    type Error = CodecError;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<BytesMut>, CodecError> {
        self.0.decode_frame(buf)
    }

    fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<BytesMut>, CodecError> {
        match self.0.decode_frame(buf)? {
            Some(f) => Ok(Some(f)),
            None => {
                // As `JsonCodec::decode_eof`: a truncated last frame ends the stream.
                self.0.reset(buf);
                Ok(None)
            }
        }
    }
}

impl Encoder<&Message> for FrameCodec {
    type Error = CodecError;

    fn encode(&mut self, msg: &Message, dst: &mut BytesMut) -> Result<(), CodecError> {
        Encoder::<&Message>::encode(&mut self.0, msg, dst)
    }
}

impl Encoder<Message> for FrameCodec {
    type Error = CodecError;

    fn encode(&mut self, msg: Message, dst: &mut BytesMut) -> Result<(), CodecError> {
        Encoder::<&Message>::encode(&mut self.0, &msg, dst)
    }
}

/// Who waits for a reply, and in which form.
#[derive(Debug)]
pub(crate) enum Pending {
    Value(oneshot::Sender<Result<Value, RpcError>>),
    Text(oneshot::Sender<Result<TableUpdates, RpcError>>),
}

impl Pending {
    pub fn is_closed(&self) -> bool {
        match self {
            Pending::Value(tx) => tx.is_closed(),
            Pending::Text(tx) => tx.is_closed(),
        }
    }

    /// Hands over the reply: `text` is the result kept as text, when it was.
    pub fn send(self, result: Result<Value, RpcError>, text: Option<TableUpdates>) {
        match self {
            Pending::Value(tx) => {
                let _ = tx.send(result);
            }
            Pending::Text(tx) => {
                let _ = tx.send(match text {
                    Some(t) => Ok(t),
                    None => result.map(|v| TableUpdates::from_value(&v)),
                });
            }
        }
    }
}

/// The members of a response, unparsed. A member given as `null` is `Some("null")`.
#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(default, borrow, deserialize_with = "present")]
    id: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "present")]
    method: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "present")]
    result: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "present")]
    error: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "present")]
    params: Option<&'a RawValue>,
}

fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<&'de RawValue>, D::Error> {
    <&RawValue>::deserialize(d).map(Some)
}

/// Parses one frame. A successful response (`error` null) to a request id for which
/// `wants_text` is true comes back with a `null` result and the result's text beside it;
/// an `update` or `update2` notification comes back with `null` in place of its
/// table-updates and their text beside it. Everything else is parsed whole, exactly as
/// [`JsonCodec`] does, and so is anything unusual about those two (a member given twice, a
/// method name spelled with escapes, params that are not a pair): the whole parse decides.
pub(crate) fn parse_frame(
    frame: &[u8],
    wants_text: impl Fn(u64) -> bool,
) -> Result<(Message, Option<TableUpdates>), CodecError> {
    if let Ok(env) = serde_json::from_slice::<Envelope<'_>>(frame)
        && let Some(split) = reply_text(&env, &wants_text).or_else(|| update_text(&env))
    {
        return Ok(split);
    }
    let value: Value = serde_json::from_slice(frame).map_err(|source| CodecError::InvalidJson {
        len: frame.len(),
        source,
    })?;
    Ok((Message::from_json(value)?, None))
}

/// A successful reply whose result the caller wants as text.
fn reply_text(
    env: &Envelope<'_>,
    wants_text: impl Fn(u64) -> bool,
) -> Option<(Message, Option<TableUpdates>)> {
    if env.method.is_some() || env.error.is_some_and(|e| e.get() != "null") {
        return None;
    }
    let id = serde_json::from_str::<u64>(env.id?.get()).ok()?;
    let result = env.result?;
    if !wants_text(id) {
        return None;
    }
    let msg = Message::Response {
        id: Value::from(id),
        result: Ok(Value::Null),
    };
    Some((msg, Some(TableUpdates::from_raw(result.to_owned()))))
}

/// An `update` or `update2` notification (`id` null, params `[monitor-id, updates]`).
fn update_text(env: &Envelope<'_>) -> Option<(Message, Option<TableUpdates>)> {
    if env.result.is_some() || env.error.is_some() || env.id?.get() != "null" {
        return None;
    }
    let method = match env.method?.get() {
        r#""update""# => "update",
        r#""update2""# => "update2",
        _ => return None,
    };
    let (monitor_id, updates) =
        serde_json::from_str::<(Value, &RawValue)>(env.params?.get()).ok()?;
    let msg = Message::Notification {
        method: method.to_owned(),
        params: Value::Array(vec![monitor_id, Value::Null]),
    };
    Some((msg, Some(TableUpdates::from_raw(updates.to_owned()))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: &Value, text_for: u64) -> (Message, Option<TableUpdates>) {
        parse_frame(&serde_json::to_vec(v).unwrap(), |id| id == text_for).unwrap()
    }

    #[test]
    fn only_successful_replies_to_text_requests_stay_text() {
        let reply = json!({"id": 3, "result": {"T": {}}, "error": null});
        let (msg, text) = parse(&reply, 3);
        assert_eq!(
            msg,
            Message::Response {
                id: json!(3),
                result: Ok(Value::Null)
            }
        );
        assert_eq!(text.unwrap().to_value().unwrap(), json!({"T": {}}));

        // Another id, an error reply, a request: parsed as before.
        for (v, id) in [
            (reply.clone(), 4),
            (json!({"id": 3, "result": null, "error": {"error": "x"}}), 3),
            (json!({"id": 3, "method": "echo", "params": []}), 3),
        ] {
            let (msg, text) = parse(&v, id);
            assert!(text.is_none(), "{v}");
            assert_eq!(msg, Message::from_json(v).unwrap());
        }
    }

    #[test]
    fn updates_stay_text() {
        for (method, updates) in [
            ("update2", json!({"T": {"u": {"modify": {"c": 1}}}})),
            ("update", json!({})),
        ] {
            let v = json!({"id": null, "method": method, "params": [["m", 2], updates]});
            let (msg, text) = parse(&v, 3);
            assert_eq!(
                msg,
                Message::Notification {
                    method: method.into(),
                    params: json!([["m", 2], null]),
                }
            );
            assert_eq!(text.unwrap().to_value().unwrap(), updates);
        }
        // Not a pair, another method, an id, a method with escapes, a second params:
        // parsed whole, as before.
        for frame in [
            r#"{"id": null, "method": "update2", "params": ["m"]}"#,
            r#"{"id": null, "method": "update2", "params": ["m", {}, 3]}"#,
            r#"{"id": null, "method": "update2", "params": {"m": {}}}"#,
            r#"{"id": null, "method": "update3", "params": ["m", "t", {}]}"#,
            r#"{"id": null, "method": "locked", "params": ["m", {}]}"#,
            r#"{"id": 7, "method": "update2", "params": ["m", {}]}"#,
            r#"{"id": null, "method": "upd\u0061te2", "params": ["m", {}]}"#,
            r#"{"id": null, "method": "update2", "params": ["m", {}], "params": ["n", {}]}"#,
        ] {
            let (msg, text) = parse_frame(frame.as_bytes(), |_| true).unwrap();
            assert!(text.is_none(), "{frame}");
            let whole: Value = serde_json::from_str(frame).unwrap();
            assert_eq!(msg, Message::from_json(whole).unwrap(), "{frame}");
        }
    }

    #[test]
    fn malformed_frames_fail_as_they_did() {
        for frame in [
            &b"[1, 2]"[..],
            b"{\"id\": 1}",
            b"{\"id\": 1, \"result\": ",
            b"\xff",
        ] {
            assert!(parse_frame(frame, |_| true).is_err(), "{frame:?}");
        }
        // A duplicate member is not an envelope; the whole-frame parse keeps the last.
        let (msg, text) = parse_frame(
            br#"{"id": 1, "result": 1, "result": 2, "error": null}"#,
            |_| true,
        )
        .unwrap();
        assert!(text.is_none());
        assert_eq!(
            msg,
            Message::Response {
                id: json!(1),
                result: Ok(json!(2))
            }
        );
    }
}
