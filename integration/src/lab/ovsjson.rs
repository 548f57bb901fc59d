//! Reading rows that `ovs-vsctl --format=json list TABLE` prints. The format is OVSDB's
//! datum notation (RFC 7047 §5.1): atoms are JSON scalars, `["uuid", ..]`, and
//! `["set", [..]]` / `["map", [[k, v], ..]]` for collections; an empty optional column
//! (`ofport` before the port opens) is an empty set.

use std::collections::BTreeMap;

use serde_json::Value;

use super::error::{LabError, Result, bounded};

/// One table row: column name to its datum.
pub(crate) type Row = BTreeMap<String, Value>;

/// Parses `{"headings": [..], "data": [[..], ..]}` into rows.
pub(crate) fn parse_rows(command: &str, output: &str) -> Result<Vec<Row>> {
    let parse_err = |reason: String| LabError::Parse {
        command: command.to_owned(),
        reason,
        output: bounded(output),
    };
    let doc: Value = serde_json::from_str(output).map_err(|e| parse_err(e.to_string()))?;
    let headings: Vec<String> = doc
        .get("headings")
        .and_then(Value::as_array)
        .ok_or_else(|| parse_err("no `headings` array".into()))?
        .iter()
        .map(|h| {
            h.as_str()
                .map(str::to_owned)
                .ok_or_else(|| parse_err("non-string heading".into()))
        })
        .collect::<Result<_>>()?;
    let data = doc
        .get("data")
        .and_then(Value::as_array)
        .ok_or_else(|| parse_err("no `data` array".into()))?;
    data.iter()
        .map(|row| {
            let cells = row
                .as_array()
                .ok_or_else(|| parse_err("row is not an array".into()))?;
            if cells.len() != headings.len() {
                return Err(parse_err(format!(
                    "row has {} cells for {} headings",
                    cells.len(),
                    headings.len()
                )));
            }
            Ok(headings
                .iter()
                .cloned()
                .zip(cells.iter().cloned())
                .collect())
        })
        .collect()
}

/// The elements of a set datum (a bare atom is a one-element set).
fn set_elements(v: &Value) -> Vec<&Value> {
    match v.as_array().map(Vec::as_slice) {
        Some([tag, Value::Array(items)]) if tag == "set" => items.iter().collect(),
        _ => vec![v],
    }
}

/// An atom as text (strings as-is, numbers and booleans printed, uuids unwrapped).
pub(crate) fn atom_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Array(a) => match a.as_slice() {
            [tag, Value::String(id)] if tag == "uuid" || tag == "named-uuid" => Some(id.clone()),
            _ => None,
        },
        _ => None,
    }
}

/// An optional string column (`error`, `type`): `None` when empty.
pub(crate) fn opt_string(v: Option<&Value>) -> Option<String> {
    let v = v?;
    set_elements(v)
        .first()
        .and_then(|a| atom_text(a))
        .filter(|s| !s.is_empty())
}

/// An optional integer column (`ofport`): `None` when empty.
pub(crate) fn opt_i64(v: Option<&Value>) -> Option<i64> {
    set_elements(v?).first().and_then(|a| a.as_i64())
}

/// A map column (`external_ids`, `statistics`, `options`) with values as text.
pub(crate) fn string_map(v: Option<&Value>) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    if let Some(Value::Array(a)) = v
        && let [tag, Value::Array(pairs)] = a.as_slice()
        && tag == "map"
    {
        for pair in pairs {
            if let Some([k, v]) = pair.as_array().map(Vec::as_slice)
                && let (Some(k), Some(v)) = (atom_text(k), atom_text(v))
            {
                out.insert(k, v);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Captured from `ovs-vsctl --format=json --columns=name,ofport,error,external_ids,statistics
    /// list Interface` on OVS 3.1 (a VM port that opened, a tunnel that did not yet).
    const SAMPLE: &str = r#"{"data":[["vm1",1,["set",[]],["map",[["attached-mac","02:00:00:00:00:01"],["iface-id","lp1"]]],["map",[["rx_bytes",0],["rx_packets",0]]]],["wt-1",["set",[]],"could not open",["map",[]],["map",[]]]],"headings":["name","ofport","error","external_ids","statistics"]}"#;

    #[test]
    fn parses_interface_rows() {
        let rows = parse_rows("test", SAMPLE).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(opt_string(rows[0].get("name")).as_deref(), Some("vm1"));
        assert_eq!(opt_i64(rows[0].get("ofport")), Some(1));
        assert_eq!(opt_string(rows[0].get("error")), None);
        let ids = string_map(rows[0].get("external_ids"));
        assert_eq!(ids.get("iface-id").map(String::as_str), Some("lp1"));
        assert_eq!(
            string_map(rows[0].get("statistics"))
                .get("rx_packets")
                .map(String::as_str),
            Some("0")
        );
        assert_eq!(opt_i64(rows[1].get("ofport")), None);
        assert_eq!(
            opt_string(rows[1].get("error")).as_deref(),
            Some("could not open")
        );
    }

    #[test]
    fn rejects_garbage() {
        assert!(parse_rows("t", "not json").is_err());
        assert!(parse_rows("t", r#"{"data":[[1]],"headings":["a","b"]}"#).is_err());
    }
}
