//! Database schemas as returned by `get_schema` (RFC 7047 §3.2): tables, columns and
//! column types. The replica uses column types to parse values and to apply `update2`
//! diffs, which differ for scalar, set and map columns.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use serde_json::Value;

/// Why a schema document could not be parsed; names the offending part.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SchemaError {
    #[error("schema: not valid JSON: {0}")]
    Json(String),
    #[error("schema: missing or invalid {field} in {context}")]
    Missing {
        field: &'static str,
        context: String,
    },
    #[error("schema: unknown atomic type {0:?}")]
    UnknownAtomicType(String),
    #[error("schema: invalid column type {0}")]
    InvalidType(String),
}

/// The five atomic types of RFC 7047 §3.2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AtomicType {
    Integer,
    Real,
    Boolean,
    String,
    Uuid,
}

impl AtomicType {
    pub fn parse(s: &str) -> Result<AtomicType, SchemaError> {
        Ok(match s {
            "integer" => AtomicType::Integer,
            "real" => AtomicType::Real,
            "boolean" => AtomicType::Boolean,
            "string" => AtomicType::String,
            "uuid" => AtomicType::Uuid,
            other => return Err(SchemaError::UnknownAtomicType(other.to_owned())),
        })
    }
}

impl fmt::Display for AtomicType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AtomicType::Integer => "integer",
            AtomicType::Real => "real",
            AtomicType::Boolean => "boolean",
            AtomicType::String => "string",
            AtomicType::Uuid => "uuid",
        })
    }
}

/// Strong references keep the target alive; weak ones are removed when it goes away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefType {
    Strong,
    Weak,
}

/// The type of a set element, a map key or a map value.
#[derive(Debug, Clone, PartialEq)]
pub struct BaseType {
    pub atomic: AtomicType,
    /// For uuid columns: the table the uuid refers to.
    pub ref_table: Option<String>,
    pub ref_type: RefType,
    /// Allowed values, kept as raw JSON (a datum); constraints are enforced by the server.
    pub enumeration: Option<Value>,
}

impl BaseType {
    fn from_json(v: &Value) -> Result<BaseType, SchemaError> {
        match v {
            Value::String(s) => Ok(BaseType {
                atomic: AtomicType::parse(s)?,
                ref_table: None,
                ref_type: RefType::Strong,
                enumeration: None,
            }),
            Value::Object(o) => {
                let atomic =
                    o.get("type")
                        .and_then(Value::as_str)
                        .ok_or_else(|| SchemaError::Missing {
                            field: "type",
                            context: v.to_string(),
                        })?;
                Ok(BaseType {
                    atomic: AtomicType::parse(atomic)?,
                    ref_table: o.get("refTable").and_then(Value::as_str).map(str::to_owned),
                    ref_type: match o.get("refType").and_then(Value::as_str) {
                        Some("weak") => RefType::Weak,
                        _ => RefType::Strong,
                    },
                    enumeration: o.get("enum").cloned(),
                })
            }
            _ => Err(SchemaError::InvalidType(v.to_string())),
        }
    }
}

/// A column type: key (and value for maps), with element count bounds.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnType {
    pub key: BaseType,
    pub value: Option<BaseType>,
    pub min: u64,
    /// `None` means "unlimited".
    pub max: Option<u64>,
}

impl ColumnType {
    pub fn from_json(v: &Value) -> Result<ColumnType, SchemaError> {
        match v {
            Value::String(_) => Ok(ColumnType {
                key: BaseType::from_json(v)?,
                value: None,
                min: 1,
                max: Some(1),
            }),
            Value::Object(o) => {
                let key = o.get("key").ok_or_else(|| SchemaError::Missing {
                    field: "key",
                    context: v.to_string(),
                })?;
                let min = match o.get("min") {
                    None => 1,
                    Some(m) => m
                        .as_u64()
                        .ok_or_else(|| SchemaError::InvalidType(v.to_string()))?,
                };
                let max = match o.get("max") {
                    None => Some(1),
                    Some(Value::String(s)) if s == "unlimited" => None,
                    Some(m) => Some(
                        m.as_u64()
                            .ok_or_else(|| SchemaError::InvalidType(v.to_string()))?,
                    ),
                };
                Ok(ColumnType {
                    key: BaseType::from_json(key)?,
                    value: o.get("value").map(BaseType::from_json).transpose()?,
                    min,
                    max,
                })
            }
            _ => Err(SchemaError::InvalidType(v.to_string())),
        }
    }

    /// Exactly one element: such columns are replaced, never diffed, in `update2`.
    pub fn is_scalar(&self) -> bool {
        self.value.is_none() && self.min == 1 && self.max == Some(1)
    }
    pub fn is_map(&self) -> bool {
        self.value.is_some()
    }

    /// Whether an `update2` modify carries this column's new value rather than a diff.
    /// ovsdb-server (checked against 3.1) diffs sets that can hold several elements and
    /// maps, but sends scalars and optional (at most one element) columns whole: an
    /// optional column going from "secure" to "standalone" arrives as `"standalone"`.
    pub fn replaced_in_update2(&self) -> bool {
        self.value.is_none() && self.max == Some(1)
    }

    /// The value a new row gets when the column is not given (RFC 7047 §5.2.1): the
    /// type's default atom for columns that need one element, otherwise empty.
    pub fn default_datum(&self) -> crate::datum::Datum {
        use crate::datum::{Atom, Datum};
        if self.is_map() {
            return Datum::empty_map();
        }
        if self.min == 0 {
            return Datum::empty();
        }
        Datum::scalar(match self.key.atomic {
            AtomicType::Integer => Atom::Integer(0),
            AtomicType::Real => Atom::Real(0.0),
            AtomicType::Boolean => Atom::Boolean(false),
            AtomicType::String => Atom::String(Default::default()),
            AtomicType::Uuid => Atom::Uuid(uuid::Uuid::nil()),
        })
    }
}

/// The type of the implicit `_uuid` and `_version` columns.
static UUID_COLUMN: ColumnType = ColumnType {
    key: BaseType {
        atomic: AtomicType::Uuid,
        ref_table: None,
        ref_type: RefType::Strong,
        enumeration: None,
    },
    value: None,
    min: 1,
    max: Some(1),
};

#[derive(Debug, Clone, PartialEq)]
pub struct ColumnSchema {
    pub ty: ColumnType,
    pub ephemeral: bool,
    pub mutable: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TableSchema {
    pub name: String,
    pub columns: BTreeMap<String, ColumnSchema>,
    pub is_root: bool,
    pub max_rows: Option<u64>,
    pub indexes: Vec<Vec<String>>,
}

impl TableSchema {
    /// The type of a column, including the implicit `_uuid` and `_version`.
    pub fn column_type(&self, column: &str) -> Option<&ColumnType> {
        match column {
            "_uuid" | "_version" => Some(&UUID_COLUMN),
            _ => self.columns.get(column).map(|c| &c.ty),
        }
    }
}

/// A parsed `get_schema` reply.
#[derive(Debug, Clone, PartialEq)]
pub struct DatabaseSchema {
    pub name: String,
    pub version: String,
    pub cksum: Option<String>,
    pub tables: BTreeMap<String, TableSchema>,
}

impl DatabaseSchema {
    pub fn from_json(v: &Value) -> Result<DatabaseSchema, SchemaError> {
        let missing = |field: &'static str, context: &str| SchemaError::Missing {
            field,
            context: context.to_owned(),
        };
        let name = v
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| missing("name", "database schema"))?
            .to_owned();
        let version = v
            .get("version")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let tables_json = v
            .get("tables")
            .and_then(Value::as_object)
            .ok_or_else(|| missing("tables", &name))?;
        let mut tables = BTreeMap::new();
        for (tname, t) in tables_json {
            let cols = t
                .get("columns")
                .and_then(Value::as_object)
                .ok_or_else(|| missing("columns", tname))?;
            let mut columns = BTreeMap::new();
            for (cname, c) in cols {
                let ty = c
                    .get("type")
                    .ok_or_else(|| missing("type", &format!("{tname}.{cname}")))?;
                columns.insert(
                    cname.clone(),
                    ColumnSchema {
                        ty: ColumnType::from_json(ty)?,
                        ephemeral: c.get("ephemeral").and_then(Value::as_bool).unwrap_or(false),
                        mutable: c.get("mutable").and_then(Value::as_bool).unwrap_or(true),
                    },
                );
            }
            let indexes = t
                .get("indexes")
                .and_then(Value::as_array)
                .map(|ixs| {
                    ixs.iter()
                        .filter_map(Value::as_array)
                        .map(|cols| {
                            cols.iter()
                                .filter_map(Value::as_str)
                                .map(str::to_owned)
                                .collect()
                        })
                        .collect()
                })
                .unwrap_or_default();
            tables.insert(
                tname.clone(),
                TableSchema {
                    name: tname.clone(),
                    columns,
                    is_root: t.get("isRoot").and_then(Value::as_bool).unwrap_or(false),
                    max_rows: t.get("maxRows").and_then(Value::as_u64),
                    indexes,
                },
            );
        }
        Ok(DatabaseSchema {
            name,
            version,
            cksum: v.get("cksum").and_then(Value::as_str).map(str::to_owned),
            tables,
        })
    }

    pub fn table(&self, name: &str) -> Option<&TableSchema> {
        self.tables.get(name)
    }
}

/// How many distinct schemas [`SharedSchemas`] keeps (hypervisors of a few OVS versions,
/// hardware VTEPs); a peer with yet another one evicts the oldest, it is never refused.
const SHARED_SCHEMAS: usize = 8;

/// One parsed copy of each schema the peers of a listener send, for their replicas to
/// share. Every hypervisor of one OVS version sends the same `Open_vSwitch` schema; parsed
/// once per connection it cost about 80 KB per hypervisor, 0.2 GB at 3,000.
#[derive(Debug, Default)]
pub struct SharedSchemas {
    known: Mutex<Vec<Arc<DatabaseSchema>>>,
    /// The texts known schemas came as (`get_schema` results), most recent last.
    texts: Mutex<Vec<(Box<str>, Arc<DatabaseSchema>)>>,
}

impl SharedSchemas {
    pub fn new() -> Self {
        Self::default()
    }

    /// The shared copy of `schema`: one already known that equals it, or `schema` itself,
    /// now known.
    pub fn share(&self, schema: DatabaseSchema) -> Arc<DatabaseSchema> {
        let mut known = self.known.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(same) = known.iter().find(|k| ***k == schema) {
            return same.clone();
        }
        if known.len() >= SHARED_SCHEMAS {
            known.remove(0);
        }
        let schema = Arc::new(schema);
        known.push(schema.clone());
        schema
    }

    /// The shared copy of the schema a peer sent as `text` (a `get_schema` result). A
    /// text received before is not parsed again: every hypervisor of one OVS version
    /// sends the same one, and after a controller restart or a network outage all of
    /// them are fetched at once (parsing each was a twentieth of weftd's work in a
    /// reconnect storm).
    pub fn share_text(&self, text: &str) -> Result<Arc<DatabaseSchema>, SchemaError> {
        {
            let texts = self.texts.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((_, schema)) = texts.iter().rev().find(|(t, _)| **t == *text) {
                return Ok(schema.clone());
            }
        }
        let value: Value =
            serde_json::from_str(text).map_err(|e| SchemaError::Json(e.to_string()))?;
        let schema = self.share(DatabaseSchema::from_json(&value)?);
        let mut texts = self.texts.lock().unwrap_or_else(|e| e.into_inner());
        if texts.len() >= SHARED_SCHEMAS {
            texts.remove(0);
        }
        texts.push((text.into(), schema.clone()));
        Ok(schema)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_column_types() {
        let s = DatabaseSchema::from_json(&json!({
            "name": "Open_vSwitch", "version": "8.3.1",
            "tables": {"Bridge": {"isRoot": true, "indexes": [["name"]], "columns": {
                "name": {"type": "string", "mutable": false},
                "ports": {"type": {"key": {"type": "uuid", "refTable": "Port"}, "min": 0, "max": "unlimited"}},
                "external_ids": {"type": {"key": "string", "value": "string", "min": 0, "max": "unlimited"}},
                "fail_mode": {"type": {"key": {"type": "string", "enum": ["set", ["standalone", "secure"]]}, "min": 0, "max": 1}}
            }}}
        }))
        .unwrap();
        let b = s.table("Bridge").unwrap();
        assert!(b.is_root);
        assert_eq!(b.indexes, vec![vec!["name".to_owned()]]);
        assert!(b.columns["name"].ty.is_scalar());
        assert!(!b.columns["name"].mutable);
        assert_eq!(b.columns["ports"].ty.key.ref_table.as_deref(), Some("Port"));
        assert_eq!(b.columns["ports"].ty.max, None);
        assert!(b.columns["external_ids"].ty.is_map());
        assert!(!b.columns["fail_mode"].ty.is_scalar());
        assert!(b.column_type("_uuid").unwrap().is_scalar());
    }

    #[test]
    fn equal_schemas_are_shared_and_different_ones_kept_apart() {
        let doc = |version: &str| {
            json!({"name": "db", "version": version, "tables": {"T": {"columns": {
                "c": {"type": "string"}}}}})
        };
        let shared = SharedSchemas::new();
        let a = shared.share(DatabaseSchema::from_json(&doc("1.0.0")).unwrap());
        let b = shared.share(DatabaseSchema::from_json(&doc("1.0.0")).unwrap());
        let c = shared.share(DatabaseSchema::from_json(&doc("2.0.0")).unwrap());
        assert!(
            Arc::ptr_eq(&a, &b),
            "an equal schema is the one already parsed"
        );
        assert!(!Arc::ptr_eq(&a, &c));
        assert_eq!(c.version, "2.0.0");
        // Past its bound the oldest goes; what is shared stays correct.
        for v in 3..3 + SHARED_SCHEMAS {
            shared.share(DatabaseSchema::from_json(&doc(&format!("{v}.0.0"))).unwrap());
        }
        let a2 = shared.share(DatabaseSchema::from_json(&doc("1.0.0")).unwrap());
        assert_eq!(*a2, *a);
        assert!(shared.known.lock().unwrap().len() <= SHARED_SCHEMAS);
    }

    /// A schema text seen before is the schema parsed then; an equal schema written
    /// otherwise is parsed and still shared; a text that is no schema is an error.
    #[test]
    fn a_schema_text_seen_before_is_not_parsed_again() {
        let doc = json!({"name": "db", "version": "1.0.0", "tables": {"T": {"columns": {
            "c": {"type": "string"}}}}});
        let shared = SharedSchemas::new();
        let text = doc.to_string();
        let a = shared.share_text(&text).unwrap();
        let b = shared.share_text(&text).unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(*a, DatabaseSchema::from_json(&doc).unwrap());
        let pretty = serde_json::to_string_pretty(&doc).unwrap();
        assert!(Arc::ptr_eq(&shared.share_text(&pretty).unwrap(), &a));
        assert_eq!(shared.texts.lock().unwrap().len(), 2);
        assert!(matches!(shared.share_text("[1"), Err(SchemaError::Json(_))));
        assert!(shared.share_text("{\"name\": \"x\"}").is_err());
        for v in 0..2 * SHARED_SCHEMAS {
            let other = json!({"name": "db", "version": format!("{v}.0.0"), "tables": {}});
            shared.share_text(&other.to_string()).unwrap();
        }
        assert!(shared.texts.lock().unwrap().len() <= SHARED_SCHEMAS);
        assert_eq!(*shared.share_text(&text).unwrap(), *a);
    }

    #[test]
    fn rejects_bad_types() {
        assert!(ColumnType::from_json(&json!("float")).is_err());
        assert!(DatabaseSchema::from_json(&json!({"name": "x"})).is_err());
    }
}
