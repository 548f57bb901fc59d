//! Table-updates decoded straight from JSON text into row operations, with each column's
//! type from the schema, never building a `serde_json::Value`.
//!
//! A 10,000-row initial monitor reply built as a `Value` cost as much as the replica's
//! own rows (a map and a `String` per column, then converted and dropped). The result is
//! the same as [`super::parse::parse`]'s on the same text, errors included where they are
//! typed; JSON that is not table-updates at all is [`ReplicaError::BadJson`]. Text can say
//! two things a `Value` cannot, and both are errors here: a table named twice, and an
//! `update2` row update with more than one member (a `Value` keeps the last table, and
//! the first member in key order).

use std::cell::Cell;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use uuid::Uuid;

use crate::datum::seed::{DatumSeed, ErrorSlot, Text};
use crate::datum::{DatumError, Row};
use crate::schema::{DatabaseSchema, TableSchema};

use super::parse::{RowOp, default_row};
use super::replica::ReplicaError;
use super::request::UpdateFormat;

/// The `visit_*` methods of a visitor that wants an object, failing with
/// [`ReplicaError::NotAnObject`] as the `Value` path does.
macro_rules! only_objects {
    ($out:ty) => {
        fn visit_unit<E: de::Error>(self) -> Result<$out, E> {
            Err(self.not_an_object("null"))
        }
        fn visit_bool<E: de::Error>(self, b: bool) -> Result<$out, E> {
            Err(self.not_an_object(&b.to_string()))
        }
        fn visit_i64<E: de::Error>(self, i: i64) -> Result<$out, E> {
            Err(self.not_an_object(&i.to_string()))
        }
        fn visit_u64<E: de::Error>(self, u: u64) -> Result<$out, E> {
            Err(self.not_an_object(&u.to_string()))
        }
        fn visit_f64<E: de::Error>(self, f: f64) -> Result<$out, E> {
            Err(self.not_an_object(&f.to_string()))
        }
        fn visit_str<E: de::Error>(self, s: &str) -> Result<$out, E> {
            Err(self.not_an_object(&format!("{s:?}")))
        }
        fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<$out, A::Error> {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            Err(self.not_an_object("an array"))
        }
    };
}

/// Everything the seeds share: the schema, where typed errors wait, what was decoded.
struct Ctx<'a> {
    schema: &'a DatabaseSchema,
    monitored: &'a BTreeMap<String, Vec<String>>,
    format: UpdateFormat,
    datum_error: ErrorSlot,
    error: Cell<Option<ReplicaError>>,
    ops: Vec<(String, Uuid, RowOp)>,
}

impl Ctx<'_> {
    fn fail<E: de::Error>(&self, e: ReplicaError) -> E {
        let text = e.to_string();
        self.error.set(Some(e));
        E::custom(text)
    }
}

/// Decodes a table-updates object (`update`/`update2` params, or a monitor reply).
pub(super) fn decode(
    schema: &DatabaseSchema,
    monitored: &BTreeMap<String, Vec<String>>,
    format: UpdateFormat,
    json: &str,
) -> Result<Vec<(String, Uuid, RowOp)>, ReplicaError> {
    let mut ctx = Ctx {
        schema,
        monitored,
        format,
        datum_error: Cell::new(None),
        error: Cell::new(None),
        ops: Vec::new(),
    };
    let mut de = serde_json::Deserializer::from_str(json);
    let outcome = Tables { ctx: &mut ctx }
        .deserialize(&mut de)
        .and_then(|()| de.end());
    if let Err(e) = outcome {
        return Err(ctx
            .error
            .take()
            .unwrap_or_else(|| ReplicaError::BadJson(e.to_string())));
    }
    // Same order as the `Value` path (table, then uuid) and, as a JSON object keeps the
    // last of a repeated key, the last update of a row repeated in one message.
    let mut ops = ctx.ops;
    ops.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
    let mut kept: Vec<(String, Uuid, RowOp)> = Vec::with_capacity(ops.len());
    for op in ops {
        match kept.last_mut() {
            Some(last) if last.0 == op.0 && last.1 == op.1 => *last = op,
            _ => kept.push(op),
        }
    }
    Ok(kept)
}

/// `{table: {uuid: row-update}}`.
struct Tables<'c, 'a> {
    ctx: &'c mut Ctx<'a>,
}

impl<'de> DeserializeSeed<'de> for Tables<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl Tables<'_, '_> {
    fn not_an_object<E: de::Error>(&self, what: &str) -> E {
        self.ctx.fail(ReplicaError::NotAnObject(what.to_owned()))
    }
}

impl<'de> Visitor<'de> for Tables<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a table-updates object")
    }
    only_objects!(());
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen: Vec<&str> = Vec::new();
        while let Some(Text(table)) = map.next_key::<Text<'_>>()? {
            let schema = self.ctx.schema;
            let Some(ts) = schema.table(&table) else {
                return Err(self
                    .ctx
                    .fail(ReplicaError::UnknownTable(table.into_owned())));
            };
            // A `Value` would keep only the last; rows of both would be neither.
            if seen.contains(&ts.name.as_str()) {
                return Err(self.ctx.fail(ReplicaError::BadJson(format!(
                    "table {:?} given twice",
                    ts.name
                ))));
            }
            seen.push(&ts.name);
            let defaults = match self.ctx.format {
                UpdateFormat::Update2 => default_row(ts, self.ctx.monitored.get(ts.name.as_str())),
                UpdateFormat::Update => Row::new(),
            };
            map.next_value_seed(Rows {
                ctx: self.ctx,
                ts,
                table: &ts.name,
                defaults: &defaults,
            })?;
        }
        Ok(())
    }
}

/// `{uuid: row-update}` of one table.
struct Rows<'c, 'a, 't> {
    ctx: &'c mut Ctx<'a>,
    ts: &'t TableSchema,
    table: &'t str,
    defaults: &'t Row,
}

impl<'de> DeserializeSeed<'de> for Rows<'_, '_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl Rows<'_, '_, '_> {
    fn not_an_object<E: de::Error>(&self, what: &str) -> E {
        self.ctx.fail(ReplicaError::NotAnObject(what.to_owned()))
    }
}

impl<'de> Visitor<'de> for Rows<'_, '_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object of row updates by uuid")
    }
    only_objects!(());
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(Text(key)) = map.next_key::<Text<'_>>()? {
            let Ok(uuid) = Uuid::parse_str(&key) else {
                return Err(self.ctx.fail(ReplicaError::BadUuid(key.into_owned())));
            };
            let ctx = &*self.ctx;
            let op = map.next_value_seed(RowUpdate {
                ctx,
                ts: self.ts,
                defaults: self.defaults,
                table: self.table,
                uuid,
            })?;
            self.ctx.ops.push((self.table.to_owned(), uuid, op));
        }
        Ok(())
    }
}

/// One row update: `{"initial"|"insert"|"modify": row}` or `{"delete": null}` for
/// `update2`, `{"old": row?, "new": row?}` for `update`.
struct RowUpdate<'c, 'a, 't> {
    ctx: &'c Ctx<'a>,
    ts: &'t TableSchema,
    defaults: &'t Row,
    table: &'t str,
    uuid: Uuid,
}

impl RowUpdate<'_, '_, '_> {
    fn bad<E: de::Error>(&self, what: &str) -> E {
        self.ctx.fail(ReplicaError::BadRowUpdate {
            table: self.table.to_owned(),
            uuid: self.uuid,
            update: what.to_owned(),
        })
    }
    /// The row at `map`'s next value, starting from `row`.
    fn row<'de, A: MapAccess<'de>>(&self, map: &mut A, row: Row) -> Result<Row, A::Error> {
        map.next_value_seed(Columns {
            ctx: self.ctx,
            ts: self.ts,
            table: self.table,
            uuid: self.uuid,
            row,
        })
    }
}

impl<'de> DeserializeSeed<'de> for RowUpdate<'_, '_, '_> {
    type Value = RowOp;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<RowOp, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for RowUpdate<'_, '_, '_> {
    type Value = RowOp;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a row update object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RowOp, A::Error> {
        match self.ctx.format {
            UpdateFormat::Update2 => {
                let Some(Text(kind)) = map.next_key::<Text<'_>>()? else {
                    return Err(self.bad("{}"));
                };
                let op = match &*kind {
                    "initial" | "insert" => RowOp::Put(self.row(&mut map, self.defaults.clone())?),
                    "modify" => RowOp::Diff(self.row(&mut map, Row::new())?),
                    "delete" => {
                        map.next_value::<IgnoredAny>()?;
                        RowOp::Delete
                    }
                    other => return Err(self.bad(&format!("{{{other:?}: ...}}"))),
                };
                if map.next_key::<IgnoredAny>()?.is_some() {
                    return Err(self.bad("a row update with more than one member"));
                }
                Ok(op)
            }
            UpdateFormat::Update => {
                let (mut old, mut new) = (None, None);
                while let Some(Text(key)) = map.next_key::<Text<'_>>()? {
                    match &*key {
                        "old" => old = Some(map.next_value::<Option<IgnoredAny>>()?.is_some()),
                        "new" => {
                            new = map
                                .next_value_seed(Nullable(Columns {
                                    ctx: self.ctx,
                                    ts: self.ts,
                                    table: self.table,
                                    uuid: self.uuid,
                                    row: Row::new(),
                                }))?
                                .map(Some)
                        }
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                match (old, new.flatten()) {
                    (Some(true), Some(row)) => Ok(RowOp::Merge(row)),
                    (_, Some(row)) => Ok(RowOp::Put(row)),
                    (Some(_), None) => Ok(RowOp::Delete),
                    (None, None) => Err(self.bad("neither old nor new")),
                }
            }
        }
    }
    fn visit_unit<E: de::Error>(self) -> Result<RowOp, E> {
        Err(self.bad("null"))
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<RowOp, E> {
        Err(self.bad("a boolean"))
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<RowOp, E> {
        Err(self.bad("a number"))
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<RowOp, E> {
        Err(self.bad("a number"))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<RowOp, E> {
        Err(self.bad("a number"))
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<RowOp, E> {
        Err(self.bad("a string"))
    }
    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<RowOp, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Err(self.bad("an array"))
    }
}

/// `null`, or what `S` reads.
struct Nullable<S>(S);

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for Nullable<S> {
    type Value = Option<S::Value>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_option(self)
    }
}

impl<'de, S: DeserializeSeed<'de>> Visitor<'de> for Nullable<S> {
    type Value = Option<S::Value>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("null or a row")
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        self.0.deserialize(d).map(Some)
    }
}

/// A row object `{column: datum}`, read into `row` (a new row's defaults, or empty).
struct Columns<'c, 'a, 't> {
    ctx: &'c Ctx<'a>,
    ts: &'t TableSchema,
    table: &'t str,
    uuid: Uuid,
    row: Row,
}

impl<'de> DeserializeSeed<'de> for Columns<'_, '_, '_> {
    type Value = Row;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Row, D::Error> {
        d.deserialize_any(self)
    }
}

impl Columns<'_, '_, '_> {
    fn not_an_object<E: de::Error>(&self, what: &str) -> E {
        self.ctx.fail(ReplicaError::Datum {
            table: self.table.to_owned(),
            uuid: self.uuid,
            source: DatumError::NotARow(what.to_owned()),
        })
    }
}

impl<'de> Visitor<'de> for Columns<'_, '_, '_> {
    type Value = Row;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a row object")
    }
    only_objects!(Row);
    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<Row, A::Error> {
        while let Some(Text(name)) = map.next_key::<Text<'_>>()? {
            let seed = DatumSeed {
                ty: self.ts.column_type(&name),
                slot: &self.ctx.datum_error,
            };
            let datum =
                map.next_value_seed(seed)
                    .map_err(|e| match self.ctx.datum_error.take() {
                        Some(source) => self.ctx.fail(ReplicaError::Datum {
                            table: self.table.to_owned(),
                            uuid: self.uuid,
                            source,
                        }),
                        None => e,
                    })?;
            match self.row.get_mut(&*name) {
                Some(slot) => *slot = datum,
                None => {
                    self.row.insert(Arc::from(&*name), datum);
                }
            }
        }
        Ok(self.row)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::{Value, json};

    use super::decode;

    use crate::monitor::{MonitorRequest, Replica, TableUpdates, UpdateFormat};
    use crate::schema::DatabaseSchema;

    fn schema() -> DatabaseSchema {
        DatabaseSchema::from_json(&json!({"name": "db", "tables": {
            "T": {"columns": {
                "name": {"type": "string"},
                "n": {"type": "integer"},
                "r": {"type": "real"},
                "b": {"type": "boolean"},
                "ref": {"type": {"key": {"type": "uuid", "refTable": "T"}, "min": 0, "max": 1}},
                "tags": {"type": {"key": "string", "min": 0, "max": "unlimited"}},
                "ids": {"type": {"key": "string", "value": "integer", "min": 0, "max": "unlimited"}}
            }},
            "U": {"columns": {"x": {"type": "integer"}}}
        }}))
        .unwrap()
    }

    const U1: &str = "11111111-1111-1111-1111-111111111111";
    const U2: &str = "22222222-2222-2222-2222-222222222222";

    /// Applies `steps` to one replica through `Value`s and to another through text, and
    /// checks that each step has the same outcome and leaves the same rows.
    fn same_as_value_path(monitored: Option<&[&str]>, steps: &[(UpdateFormat, Value)]) {
        let mut by_value = Replica::new(schema());
        if let Some(cols) = monitored {
            by_value.set_monitored(&[MonitorRequest::table("T").columns(cols)]);
        }
        let mut by_text = by_value.clone();
        for (format, v) in steps {
            let a = by_value.apply(*format, v);
            let b = by_text.apply(*format, &TableUpdates::from_value(v));
            match (&a, &b) {
                (Ok(a), Ok(b)) => assert_eq!(a, b, "{v}"),
                (Err(ea), Err(eb)) => assert_eq!(
                    std::mem::discriminant(ea),
                    std::mem::discriminant(eb),
                    "{v}: {ea} vs {eb}"
                ),
                _ => panic!("{v}: {a:?} vs {b:?}"),
            }
            for t in ["T", "U"] {
                let rows_a: Vec<_> = by_value.table(t).collect();
                let rows_b: Vec<_> = by_text.table(t).collect();
                assert_eq!(rows_a, rows_b, "{v}");
            }
        }
    }

    #[test]
    fn update2_decodes_as_the_value_path_does() {
        let u2 = UpdateFormat::Update2;
        same_as_value_path(
            None,
            &[
                (
                    u2,
                    json!({"T": {
                        U1: {"initial": {"name": "a", "n": 1, "r": 2, "b": true,
                            "ref": ["uuid", U2], "tags": ["set", ["y", "x", "x"]],
                            "ids": ["map", [["k", 1], ["a", 2]]], "extra": ["set", [1, "s"]],
                            "_version": ["uuid", U1]}},
                        U2: {"initial": {"name": "esc\"aped\u{e9}\n", "ids": ["set", []]}}},
                        "U": {U1: {"insert": {}}}}),
                ),
                (
                    u2,
                    json!({"T": {U1: {"modify": {"n": 5, "tags": ["set", ["x", "z"]],
                        "ids": ["map", [["k", 1], ["b", 3]]], "ref": ["set", []]}},
                        U2: {"delete": null}}}),
                ),
                (u2, json!({"T": {U1: {"modify": {"r": 1.5e3, "n": -7}}}})),
            ],
        );
        same_as_value_path(
            Some(&["name", "tags"]),
            &[(u2, json!({"T": {U1: {"insert": {"name": "a"}}}}))],
        );
    }

    #[test]
    fn update_decodes_as_the_value_path_does() {
        let u = UpdateFormat::Update;
        same_as_value_path(
            None,
            &[
                (
                    u,
                    json!({"T": {U1: {"new": {"name": "a", "n": 1}}, U2: {"old": null, "new": {"name": "b"}}}}),
                ),
                (
                    u,
                    json!({"T": {U1: {"old": {"n": 1}, "new": {"n": 2}, "other": [1]}}}),
                ),
                (u, json!({"T": {U2: {"old": {"name": "b"}}}})),
                (u, json!({"T": {U1: {"old": {"name": "a"}, "new": null}}})),
            ],
        );
    }

    #[test]
    fn malformed_updates_fail_alike_and_change_nothing() {
        let bad = [
            json!([]),
            json!({"X": {}}),
            json!({"T": []}),
            json!({"T": {"not-a-uuid": {"insert": {}}}}),
            json!({"T": {U1: null}}),
            json!({"T": {U1: 5}}),
            json!({"T": {U1: {}}}),
            json!({"T": {U1: {"upsert": {}}}}),
            json!({"T": {U1: {"insert": []}}}),
            json!({"T": {U1: {"insert": {"n": "x"}}}}),
            json!({"T": {U1: {"insert": {"n": 1.5}}}}),
            json!({"T": {U1: {"insert": {"b": 1}}}}),
            json!({"T": {U1: {"insert": {"ref": ["uuid", "nope"]}}}}),
            json!({"T": {U1: {"insert": {"ref": ["named-uuid"]}}}}),
            json!({"T": {U1: {"insert": {"tags": ["map", [["a", "b"]]]}}}}),
            json!({"T": {U1: {"insert": {"ids": "x"}}}}),
            json!({"T": {U1: {"insert": {"ids": ["set", ["x"]]}}}}),
            json!({"T": {U1: {"insert": {"ids": ["map", [["k"]]]}}}}),
            json!({"T": {U1: {"insert": {"ids": ["map", [["k", "v"]]]}}}}),
            json!({"T": {U1: {"insert": {"tags": ["set", [["set", []]]]}}}}),
            json!({"T": {U1: {"insert": {"tags": ["set", ["a"], "extra"]}}}}),
            json!({"T": {U1: {"insert": {"tags": ["bag", []]}}}}),
            json!({"T": {U1: {"insert": {"tags": []}}}}),
            json!({"T": {U1: {"insert": {"tags": null}}}}),
            json!({"T": {U1: {"insert": {"tags": {"a": 1}}}}}),
            json!({"T": {U1: {"modify": {"name": "a"}}}}),
            json!({"T": {U1: {"delete": null}}}),
        ];
        for v in &bad {
            for format in [UpdateFormat::Update2, UpdateFormat::Update] {
                let seed = (
                    UpdateFormat::Update2,
                    json!({"T": {U2: {"insert": {"name": "keep"}}}}),
                );
                same_as_value_path(None, &[seed, (format, v.clone())]);
            }
        }
    }

    /// Random byte edits of valid updates: whatever still parses as JSON must fare the
    /// same through both paths (both fail, or both give the same changes and rows).
    #[test]
    fn mutated_updates_fare_alike() {
        use rand::{Rng, SeedableRng};
        let base = [
            json!({"T": {U1: {"initial": {"name": "a", "n": 1, "r": 2.5, "b": false,
                "ref": ["uuid", U2], "tags": ["set", ["x", "y"]], "ids": ["map", [["k", 1]]]}},
                U2: {"insert": {"tags": "z"}}}, "U": {U1: {"delete": null}}}),
            json!({"T": {U1: {"old": {"n": 1}, "new": {"name": "b", "ids": ["map", []]}},
                U2: {"new": {"ref": ["set", []], "tags": ["set", []]}}}}),
        ];
        let alphabet = br#"{}[]",:0123456789.-e nulltrueset map uuid"#;
        let mut rng = rand::rngs::StdRng::seed_from_u64(18);
        let mut tried = 0;
        for _ in 0..4000 {
            let mut text = base[rng.random_range(0..base.len())]
                .to_string()
                .into_bytes();
            for _ in 0..rng.random_range(1..4) {
                let at = rng.random_range(0..text.len());
                let c = alphabet[rng.random_range(0..alphabet.len())];
                match rng.random_range(0..3) {
                    0 => text[at] = c,
                    1 => text.insert(at, c),
                    _ => {
                        text.remove(at);
                    }
                }
            }
            let Ok(v) = serde_json::from_slice::<Value>(&text) else {
                continue;
            };
            tried += 1;
            for format in [UpdateFormat::Update2, UpdateFormat::Update] {
                let mut by_value = Replica::new(schema());
                let mut by_text = Replica::new(schema());
                let a = by_value.apply(format, &v);
                let b = by_text.apply(format, &TableUpdates::from_value(&v));
                if let (Ok(a), Ok(b)) = (&a, &b) {
                    assert_eq!(a, b, "{v}");
                }
                // The text path is stricter only about repeated members, which a `Value`
                // cannot show; anything else one accepts, the other must too.
                assert_eq!(a.is_ok(), b.is_ok(), "{v}: {a:?} vs {b:?}");
                for t in ["T", "U"] {
                    assert!(by_value.table(t).eq(by_text.table(t)), "{v}");
                }
            }
        }
        assert!(tried > 500, "only {tried} mutants were JSON");
    }

    #[test]
    fn text_that_is_not_table_updates_is_a_typed_error() {
        // `TableUpdates` holds valid JSON; the decoder itself must still cope with any text.
        let s = schema();
        let none = BTreeMap::new();
        let deep = format!(
            "{{\"T\": {{\"{U1}\": {{\"insert\": {{\"tags\": {}1{}}}}}}}}}",
            "[".repeat(10_000),
            "]".repeat(10_000)
        );
        let texts = [
            "",
            "{",
            "\u{ff}",
            "{\"T\": {\"11111111-1111-1111-1111-111111111111\": {\"insert\": {\"n\": 1}}}",
            "{\"T\": {}} trailing",
            "{\"T\": {}, \"T\": {}}",
            "{\"T\": {\"11111111-1111-1111-1111-111111111111\": {\"insert\": {\"tags\": [\"set\", [1e999]]}}}}",
            &deep,
        ];
        for text in texts {
            for format in [UpdateFormat::Update2, UpdateFormat::Update] {
                // Truncated text may fail on what it holds before its end is reached.
                let outcome = decode(&s, &none, format, text).map(|ops| ops.len());
                assert!(outcome.is_err(), "{text:.80}: {outcome:?}");
            }
        }
    }
}
