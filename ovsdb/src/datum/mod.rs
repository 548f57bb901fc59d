//! Typed OVSDB values: atoms, datums (sets and maps) and rows, with the canonical JSON
//! forms of RFC 7047 §5.1.
//!
//! A datum is always a set or a map. A scalar column holds a one-element set, which is
//! written as a bare atom on the wire; an optional column holds a zero- or one-element set.
//! Sets and maps are kept ordered ([`AtomSet`]/[`AtomMap`], sorted vectors) so that
//! equality, diffs and the encoded JSON are deterministic.

mod collections;
pub(crate) mod seed;

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

pub use collections::{AtomMap, AtomSet};

use serde_json::{Value, json};
use uuid::Uuid;

pub use compact_str::CompactString;

use crate::schema::{AtomicType, BaseType, ColumnType};

/// A row as a map from column name to value. Columns absent from the map were not sent.
///
/// Names are shared rather than owned: a replica holds every column of every row, and a
/// `String` per column per row was most of the allocations of an initial monitor reply
/// (45 columns × 10,000 Interface rows). A row built from its table's default row shares
/// that row's names; `"name".into()` makes a name where one is needed.
pub type Row = BTreeMap<Arc<str>, Datum>;

/// Why a JSON value is not a valid atom or datum.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DatumError {
    #[error("not an OVSDB atom: {0}")]
    NotAnAtom(String),
    #[error("not an OVSDB datum: {0}")]
    NotADatum(String),
    #[error("invalid uuid {0:?}")]
    InvalidUuid(String),
    #[error("expected {expected} atom, got {got}")]
    WrongType { expected: AtomicType, got: String },
    #[error("map datum for a set column, or set datum for a map column: {0}")]
    WrongShape(String),
    #[error("row is not a JSON object: {0}")]
    NotARow(String),
}

/// One OVSDB atom. `NamedUuid` only appears in transactions: it names a row inserted by
/// an earlier operation of the same transaction.
#[derive(Debug, Clone)]
pub enum Atom {
    Integer(i64),
    Real(f64),
    Boolean(bool),
    /// Inline up to 24 bytes: nearly every string a switch's database holds (names,
    /// addresses, `external_ids` keys and values) fits, so decoding a row allocates no
    /// string and dropping a replica frees none.
    String(CompactString),
    Uuid(Uuid),
    NamedUuid(String),
}

impl Atom {
    /// A rank per variant so that atoms of different types have a total order; columns
    /// are homogeneous, so this only matters for untyped data.
    fn rank(&self) -> u8 {
        match self {
            Atom::Integer(_) => 0,
            Atom::Real(_) => 1,
            Atom::Boolean(_) => 2,
            Atom::String(_) => 3,
            Atom::Uuid(_) => 4,
            Atom::NamedUuid(_) => 5,
        }
    }

    /// Parses an atom without type information: numbers with a fraction or exponent become
    /// reals, `["uuid", s]` and `["named-uuid", s]` become uuids.
    pub fn from_json(value: &Value) -> Result<Atom, DatumError> {
        match value {
            Value::Bool(b) => Ok(Atom::Boolean(*b)),
            Value::String(s) => Ok(Atom::String(s.as_str().into())),
            Value::Number(n) => {
                if let Some(i) = n.as_i64() {
                    Ok(Atom::Integer(i))
                } else if let Some(f) = n.as_f64() {
                    Ok(Atom::Real(f))
                } else {
                    Err(DatumError::NotAnAtom(value.to_string()))
                }
            }
            Value::Array(a) => match a.as_slice() {
                [Value::String(tag), Value::String(s)] if tag == "uuid" => Uuid::parse_str(s)
                    .map(Atom::Uuid)
                    .map_err(|_| DatumError::InvalidUuid(s.clone())),
                [Value::String(tag), Value::String(s)] if tag == "named-uuid" => {
                    Ok(Atom::NamedUuid(s.clone()))
                }
                _ => Err(DatumError::NotAnAtom(value.to_string())),
            },
            _ => Err(DatumError::NotAnAtom(value.to_string())),
        }
    }

    /// Parses an atom of a known type: an integer is accepted where a real is expected.
    pub fn from_json_typed(value: &Value, ty: AtomicType) -> Result<Atom, DatumError> {
        Atom::from_json(value)?
            .of_type(ty)
            .map_err(|_| DatumError::WrongType {
                expected: ty,
                got: value.to_string(),
            })
    }

    /// This atom as a value of type `ty` (an integer is accepted where a real is
    /// expected); the atom itself back if it is of another type. One rule for both
    /// decoders (from a JSON value, and straight from the text).
    pub(crate) fn of_type(self, ty: AtomicType) -> Result<Atom, Atom> {
        match (ty, self) {
            (AtomicType::Integer, a @ Atom::Integer(_))
            | (AtomicType::Real, a @ Atom::Real(_))
            | (AtomicType::Boolean, a @ Atom::Boolean(_))
            | (AtomicType::String, a @ Atom::String(_))
            | (AtomicType::Uuid, a @ (Atom::Uuid(_) | Atom::NamedUuid(_))) => Ok(a),
            (AtomicType::Real, Atom::Integer(i)) => Ok(Atom::Real(i as f64)),
            (_, a) => Err(a),
        }
    }

    pub fn to_json(&self) -> Value {
        match self {
            Atom::Integer(i) => json!(i),
            Atom::Real(f) => json!(f),
            Atom::Boolean(b) => json!(b),
            Atom::String(s) => json!(s),
            Atom::Uuid(u) => json!(["uuid", u.to_string()]),
            Atom::NamedUuid(n) => json!(["named-uuid", n]),
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Atom::String(s) => Some(s),
            _ => None,
        }
    }
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Atom::Integer(i) => Some(*i),
            _ => None,
        }
    }
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Atom::Boolean(b) => Some(*b),
            _ => None,
        }
    }
    pub fn as_uuid(&self) -> Option<Uuid> {
        match self {
            Atom::Uuid(u) => Some(*u),
            _ => None,
        }
    }
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Atom::Real(f) => Some(*f),
            Atom::Integer(i) => Some(*i as f64),
            _ => None,
        }
    }
}

impl PartialEq for Atom {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Atom {}
impl PartialOrd for Atom {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Atom {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (Atom::Integer(a), Atom::Integer(b)) => a.cmp(b),
            (Atom::Real(a), Atom::Real(b)) => a.total_cmp(b),
            (Atom::Boolean(a), Atom::Boolean(b)) => a.cmp(b),
            (Atom::String(a), Atom::String(b)) => a.cmp(b),
            (Atom::Uuid(a), Atom::Uuid(b)) => a.cmp(b),
            (Atom::NamedUuid(a), Atom::NamedUuid(b)) => a.cmp(b),
            _ => self.rank().cmp(&other.rank()),
        }
    }
}

impl fmt::Display for Atom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Atom::Integer(i) => write!(f, "{i}"),
            Atom::Real(r) => write!(f, "{r}"),
            Atom::Boolean(b) => write!(f, "{b}"),
            Atom::String(s) => write!(f, "{s:?}"),
            Atom::Uuid(u) => write!(f, "{u}"),
            Atom::NamedUuid(n) => write!(f, "@{n}"),
        }
    }
}

impl From<&str> for Atom {
    fn from(s: &str) -> Self {
        Atom::String(s.into())
    }
}
impl From<String> for Atom {
    fn from(s: String) -> Self {
        Atom::String(s.into())
    }
}
impl From<i64> for Atom {
    fn from(i: i64) -> Self {
        Atom::Integer(i)
    }
}
impl From<bool> for Atom {
    fn from(b: bool) -> Self {
        Atom::Boolean(b)
    }
}
impl From<Uuid> for Atom {
    fn from(u: Uuid) -> Self {
        Atom::Uuid(u)
    }
}

/// An OVSDB value: a set of atoms or a map from atoms to atoms.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Datum {
    Set(AtomSet),
    Map(AtomMap),
}

impl Default for Datum {
    fn default() -> Self {
        Datum::Set(AtomSet::new())
    }
}

impl Datum {
    /// The empty set (also how an empty map column reads before its type is known).
    pub fn empty() -> Datum {
        Datum::default()
    }
    pub fn empty_map() -> Datum {
        Datum::Map(AtomMap::new())
    }
    /// A one-element set: the value of a scalar column.
    pub fn scalar(atom: impl Into<Atom>) -> Datum {
        Datum::Set(AtomSet::from([atom.into()]))
    }
    pub fn set<I: IntoIterator<Item = A>, A: Into<Atom>>(atoms: I) -> Datum {
        Datum::Set(atoms.into_iter().map(Into::into).collect())
    }
    pub fn map<I, K, V>(pairs: I) -> Datum
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<Atom>,
        V: Into<Atom>,
    {
        Datum::Map(
            pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }
    /// A reference to another row, by real uuid.
    pub fn uuid(u: Uuid) -> Datum {
        Datum::scalar(Atom::Uuid(u))
    }
    /// A reference to a row inserted earlier in the same transaction.
    pub fn named_uuid(name: &str) -> Datum {
        Datum::scalar(Atom::NamedUuid(name.to_owned()))
    }

    /// Parses a datum without type information. `["set", []]` reads as an empty set even
    /// in a map column; [`Datum::from_json_typed`] fixes that up.
    pub fn from_json(value: &Value) -> Result<Datum, DatumError> {
        if let Value::Array(a) = value {
            match a.as_slice() {
                [Value::String(tag), Value::Array(items)] if tag == "set" => {
                    let atoms = items
                        .iter()
                        .map(Atom::from_json)
                        .collect::<Result<AtomSet, _>>()?;
                    return Ok(Datum::Set(atoms));
                }
                [Value::String(tag), Value::Array(pairs)] if tag == "map" => {
                    let mut map = Vec::with_capacity(pairs.len());
                    for pair in pairs {
                        match pair.as_array().map(Vec::as_slice) {
                            Some([k, v]) => {
                                map.push((Atom::from_json(k)?, Atom::from_json(v)?));
                            }
                            _ => return Err(DatumError::NotADatum(value.to_string())),
                        }
                    }
                    return Ok(Datum::Map(map.into_iter().collect()));
                }
                _ => {}
            }
        }
        Atom::from_json(value)
            .map(Datum::scalar)
            .map_err(|_| DatumError::NotADatum(value.to_string()))
    }

    /// Parses a datum of a known column type: checks atom types, turns integers into reals
    /// where reals are expected and an empty set into an empty map for map columns.
    pub fn from_json_typed(value: &Value, ty: &ColumnType) -> Result<Datum, DatumError> {
        let check = |a: &Value, base: &BaseType| Atom::from_json_typed(a, base.atomic);
        match &ty.value {
            Some(vbase) => {
                if let Value::Array(a) = value
                    && let [Value::String(tag), Value::Array(pairs)] = a.as_slice()
                {
                    if tag == "map" {
                        let mut map = Vec::with_capacity(pairs.len());
                        for pair in pairs {
                            match pair.as_array().map(Vec::as_slice) {
                                Some([k, v]) => {
                                    map.push((check(k, &ty.key)?, check(v, vbase)?));
                                }
                                _ => return Err(DatumError::NotADatum(value.to_string())),
                            }
                        }
                        return Ok(Datum::Map(map.into_iter().collect()));
                    }
                    if tag == "set" && pairs.is_empty() {
                        return Ok(Datum::empty_map());
                    }
                }
                Err(DatumError::WrongShape(value.to_string()))
            }
            None => {
                if let Value::Array(a) = value
                    && let [Value::String(tag), Value::Array(items)] = a.as_slice()
                {
                    if tag == "set" {
                        let atoms = items
                            .iter()
                            .map(|i| check(i, &ty.key))
                            .collect::<Result<AtomSet, _>>()?;
                        return Ok(Datum::Set(atoms));
                    }
                    if tag == "map" {
                        return Err(DatumError::WrongShape(value.to_string()));
                    }
                }
                Ok(Datum::scalar(check(value, &ty.key)?))
            }
        }
    }

    /// The canonical JSON form: a one-element set is a bare atom.
    pub fn to_json(&self) -> Value {
        match self {
            Datum::Set(s) if s.len() == 1 => s.iter().next().map(Atom::to_json).unwrap_or_default(),
            Datum::Set(s) => json!(["set", s.iter().map(Atom::to_json).collect::<Vec<_>>()]),
            Datum::Map(m) => json!([
                "map",
                m.iter()
                    .map(|(k, v)| json!([k.to_json(), v.to_json()]))
                    .collect::<Vec<_>>()
            ]),
        }
    }

    /// The set's atoms (empty for a map).
    pub fn as_set(&self) -> Option<&AtomSet> {
        match self {
            Datum::Set(s) => Some(s),
            Datum::Map(_) => None,
        }
    }
    pub fn as_map(&self) -> Option<&AtomMap> {
        match self {
            Datum::Map(m) => Some(m),
            Datum::Set(_) => None,
        }
    }
    /// The single atom of a scalar or a one-element optional column.
    pub fn as_scalar(&self) -> Option<&Atom> {
        match self {
            Datum::Set(s) if s.len() == 1 => s.iter().next(),
            _ => None,
        }
    }
    pub fn len(&self) -> usize {
        match self {
            Datum::Set(s) => s.len(),
            Datum::Map(m) => m.len(),
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Applies an `update2` diff (RFC 7047bis, ovsdb-server(7)): for sets, every atom in
    /// the diff is toggled (symmetric difference); for maps, a key absent from the old
    /// value is added, a key present with the same value is removed, and a key present with
    /// a different value takes the new value. Columns of at most one element (scalar or
    /// optional) are not diffed: their "diff" is simply the new value, which the caller
    /// handles (see [`crate::schema::ColumnType::replaced_in_update2`]).
    pub fn apply_diff(&self, diff: &Datum) -> Result<Datum, DatumError> {
        match (self, diff) {
            (Datum::Set(old), Datum::Set(d)) => {
                let mut new = old.clone();
                for atom in d {
                    if !new.remove(atom) {
                        new.insert(atom.clone());
                    }
                }
                Ok(Datum::Set(new))
            }
            (Datum::Map(old), Datum::Map(d)) => {
                let mut new = old.clone();
                for (k, v) in d {
                    match new.get(k) {
                        Some(cur) if cur == v => {
                            new.remove(k);
                        }
                        _ => {
                            new.insert(k.clone(), v.clone());
                        }
                    }
                }
                Ok(Datum::Map(new))
            }
            // An empty map may have been read as an empty set and vice versa.
            (Datum::Set(old), Datum::Map(_)) if old.is_empty() => {
                Datum::empty_map().apply_diff(diff)
            }
            (Datum::Map(_), Datum::Set(d)) if d.is_empty() => Ok(self.clone()),
            _ => Err(DatumError::WrongShape(diff.to_json().to_string())),
        }
    }
}

impl fmt::Display for Datum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.to_json())
    }
}

/// Parses a JSON row object, typing each column by `columns` when the schema knows it.
pub fn row_from_json<'s>(
    value: &Value,
    column_type: impl Fn(&str) -> Option<&'s ColumnType>,
) -> Result<Row, DatumError> {
    let mut row = Row::new();
    row_merge_json(&mut row, value, column_type)?;
    Ok(row)
}

/// Parses a JSON row object into `row`, replacing the columns it names and keeping the
/// others: a row that starts from its table's defaults only allocates the names of the
/// columns it did not already have. `row` may be partly updated when an error is returned.
pub fn row_merge_json<'s>(
    row: &mut Row,
    value: &Value,
    column_type: impl Fn(&str) -> Option<&'s ColumnType>,
) -> Result<(), DatumError> {
    let obj = value
        .as_object()
        .ok_or_else(|| DatumError::NotARow(value.to_string()))?;
    for (name, v) in obj {
        let datum = match column_type(name) {
            Some(ty) => Datum::from_json_typed(v, ty)?,
            None => Datum::from_json(v)?,
        };
        match row.get_mut(name.as_str()) {
            Some(slot) => *slot = datum,
            None => {
                row.insert(Arc::from(name.as_str()), datum);
            }
        }
    }
    Ok(())
}

/// Encodes a row as a JSON object.
pub fn row_to_json(row: &Row) -> Value {
    Value::Object(
        row.iter()
            .map(|(k, v)| (k.to_string(), v.to_json()))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_forms_round_trip() {
        let u = Uuid::parse_str("36bd7f3a-0d3e-4c0c-8b9f-6b1a5f9b0c2d").unwrap();
        let cases = [
            (Datum::scalar(5i64), json!(5)),
            (Datum::scalar("br-int"), json!("br-int")),
            (Datum::empty(), json!(["set", []])),
            (Datum::set(["a", "b"]), json!(["set", ["a", "b"]])),
            (Datum::uuid(u), json!(["uuid", u.to_string()])),
            (Datum::named_uuid("p1"), json!(["named-uuid", "p1"])),
            (
                Datum::map([("k", "v"), ("a", "b")]),
                json!(["map", [["a", "b"], ["k", "v"]]]),
            ),
        ];
        for (datum, j) in cases {
            assert_eq!(datum.to_json(), j);
            assert_eq!(Datum::from_json(&j).unwrap(), datum);
        }
    }

    #[test]
    fn typed_parse_coerces_reals_and_empty_maps() {
        let ty: ColumnType = ColumnType::from_json(
            &json!({"key": "string", "value": "string", "min": 0, "max": "unlimited"}),
        )
        .unwrap();
        assert_eq!(
            Datum::from_json_typed(&json!(["set", []]), &ty).unwrap(),
            Datum::empty_map()
        );
        let real = ColumnType::from_json(&json!("real")).unwrap();
        assert_eq!(
            Datum::from_json_typed(&json!(3), &real).unwrap(),
            Datum::scalar(Atom::Real(3.0))
        );
        let int = ColumnType::from_json(&json!("integer")).unwrap();
        assert!(matches!(
            Datum::from_json_typed(&json!("x"), &int),
            Err(DatumError::WrongType { .. })
        ));
    }

    #[test]
    fn diff_semantics() {
        let old = Datum::set(["a", "b"]);
        assert_eq!(
            old.apply_diff(&Datum::set(["b", "c"])).unwrap(),
            Datum::set(["a", "c"])
        );
        let old = Datum::map([("k1", "v1"), ("k2", "v2")]);
        let diff = Datum::map([("k1", "v1"), ("k2", "x"), ("k3", "v3")]);
        assert_eq!(
            old.apply_diff(&diff).unwrap(),
            Datum::map([("k2", "x"), ("k3", "v3")])
        );
        assert_eq!(
            Datum::empty()
                .apply_diff(&Datum::map([("a", "b")]))
                .unwrap(),
            Datum::map([("a", "b")])
        );
    }

    #[test]
    fn garbage_is_rejected() {
        assert!(Datum::from_json(&json!({"x": 1})).is_err());
        assert!(Datum::from_json(&json!(["uuid", "nope"])).is_err());
        assert!(Datum::from_json(&json!(["map", [[1]]])).is_err());
    }
}
