//! Typed datums decoded straight from JSON text with serde's `DeserializeSeed`, for table
//! updates that are never built as a `serde_json::Value` (see `crate::monitor`).
//!
//! The rules are those of [`Datum::from_json_typed`] and [`Datum::from_json`] (untyped,
//! for columns the schema does not know): integers are accepted where reals are expected,
//! an empty set reads as an empty map in a map column. Typed errors go to a slot, since a
//! serde error can only carry text; the caller reports the slot's error when it holds one.

use std::borrow::Cow;
use std::cell::Cell;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use uuid::Uuid;

use super::{Atom, AtomSet, Datum, DatumError};
use crate::schema::{AtomicType, ColumnType};

/// Where a typed error waits while serde unwinds with a text one.
pub(crate) type ErrorSlot = Cell<Option<DatumError>>;

fn fail<E: de::Error>(slot: &ErrorSlot, e: DatumError) -> E {
    let text = e.to_string();
    slot.set(Some(e));
    E::custom(text)
}

/// A string that borrows from the input when it has no escapes.
pub(crate) struct Text<'de>(pub Cow<'de, str>);

impl<'de> de::Deserialize<'de> for Text<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Borrowed(s)))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(s.to_owned())))
            }
            fn visit_string<E: de::Error>(self, s: String) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(s)))
            }
        }
        d.deserialize_str(V)
    }
}

/// Checks an untyped atom against the expected type, as [`Atom::from_json_typed`] does.
fn typed(atom: Atom, ty: Option<AtomicType>) -> Result<Atom, DatumError> {
    let Some(ty) = ty else {
        return Ok(atom);
    };
    atom.of_type(ty).map_err(|a| DatumError::WrongType {
        expected: ty,
        got: a.to_json().to_string(),
    })
}

/// One atom: a bare string, number or boolean, or `["uuid", s]` / `["named-uuid", s]`.
struct AtomSeed<'s> {
    ty: Option<AtomicType>,
    slot: &'s ErrorSlot,
}

impl<'de> DeserializeSeed<'de> for AtomSeed<'_> {
    type Value = Atom;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Atom, D::Error> {
        d.deserialize_any(Shape {
            slot: self.slot,
            want: Want::Atom(self.ty),
        })
        .and_then(|v| match v {
            Parsed::Atom(a) => Ok(a),
            // `Want::Atom` only ever yields atoms.
            Parsed::Datum(_) => Err(fail(self.slot, DatumError::NotAnAtom("a datum".into()))),
        })
    }
}

/// What a [`Shape`] visitor is reading.
#[derive(Clone, Copy)]
enum Want<'t> {
    Atom(Option<AtomicType>),
    /// A datum of this type, or untyped.
    Datum(Option<&'t ColumnType>),
}

enum Parsed {
    Atom(Atom),
    Datum(Datum),
}

/// The visitor for atoms and datums: both start with a scalar or a tagged array.
struct Shape<'s, 't> {
    slot: &'s ErrorSlot,
    want: Want<'t>,
}

impl Shape<'_, '_> {
    fn key_type(&self) -> Option<AtomicType> {
        match self.want {
            Want::Atom(t) => t,
            Want::Datum(t) => t.map(|t| t.key.atomic),
        }
    }
    fn is_map_column(&self) -> bool {
        matches!(self.want, Want::Datum(Some(t)) if t.value.is_some())
    }
    /// A bare atom (or a uuid): an atom, or a one-element set.
    fn atom<E: de::Error>(&self, atom: Atom) -> Result<Parsed, E> {
        let atom = typed(atom, self.key_type()).map_err(|e| fail(self.slot, e))?;
        match self.want {
            Want::Atom(_) => Ok(Parsed::Atom(atom)),
            Want::Datum(_) if self.is_map_column() => Err(fail(
                self.slot,
                DatumError::WrongShape(atom.to_json().to_string()),
            )),
            Want::Datum(_) => Ok(Parsed::Datum(Datum::scalar(atom))),
        }
    }
    fn not_a<E: de::Error>(&self, what: &str) -> E {
        let e = match self.want {
            Want::Atom(_) => DatumError::NotAnAtom(what.to_owned()),
            Want::Datum(_) => DatumError::NotADatum(what.to_owned()),
        };
        fail(self.slot, e)
    }
}

impl<'de> Visitor<'de> for Shape<'_, '_> {
    type Value = Parsed;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an OVSDB atom or datum")
    }
    fn visit_bool<E: de::Error>(self, b: bool) -> Result<Parsed, E> {
        self.atom(Atom::Boolean(b))
    }
    fn visit_i64<E: de::Error>(self, i: i64) -> Result<Parsed, E> {
        self.atom(Atom::Integer(i))
    }
    fn visit_u64<E: de::Error>(self, u: u64) -> Result<Parsed, E> {
        // As `serde_json::Number::as_i64` then `as_f64` do for untyped atoms.
        match i64::try_from(u) {
            Ok(i) => self.atom(Atom::Integer(i)),
            Err(_) => self.atom(Atom::Real(u as f64)),
        }
    }
    fn visit_f64<E: de::Error>(self, f: f64) -> Result<Parsed, E> {
        self.atom(Atom::Real(f))
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<Parsed, E> {
        self.atom(Atom::String(s.into()))
    }
    fn visit_string<E: de::Error>(self, s: String) -> Result<Parsed, E> {
        self.atom(Atom::String(s.into()))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Parsed, E> {
        Err(self.not_a("null"))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Parsed, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Err(self.not_a("an object"))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Parsed, A::Error> {
        let Some(Text(tag)) = seq.next_element::<Text<'_>>()? else {
            return Err(self.not_a("[]"));
        };
        let parsed = match (&*tag, self.want) {
            ("uuid", _) => {
                let s: Text<'_> = seq
                    .next_element()?
                    .ok_or_else(|| self.not_a("[\"uuid\"]"))?;
                let u = Uuid::parse_str(&s.0)
                    .map_err(|_| fail(self.slot, DatumError::InvalidUuid(s.0.into_owned())))?;
                self.atom(Atom::Uuid(u))?
            }
            ("named-uuid", _) => {
                let s: Text<'_> = seq
                    .next_element()?
                    .ok_or_else(|| self.not_a("[\"named-uuid\"]"))?;
                self.atom(Atom::NamedUuid(s.0.into_owned()))?
            }
            ("set", Want::Datum(ty)) => {
                let atoms = seq
                    .next_element_seed(Atoms {
                        ty: self.key_type(),
                        slot: self.slot,
                    })?
                    .ok_or_else(|| self.not_a("[\"set\"]"))?;
                match ty {
                    Some(t) if t.value.is_some() => {
                        if !atoms.is_empty() {
                            return Err(fail(
                                self.slot,
                                DatumError::WrongShape(format!("a set of {}", atoms.len())),
                            ));
                        }
                        Parsed::Datum(Datum::empty_map())
                    }
                    _ => Parsed::Datum(Datum::Set(atoms.into_iter().collect::<AtomSet>())),
                }
            }
            ("map", Want::Datum(ty)) => {
                let (kty, vty) = match ty {
                    Some(ColumnType { value: None, .. }) => {
                        while seq.next_element::<IgnoredAny>()?.is_some() {}
                        return Err(fail(
                            self.slot,
                            DatumError::WrongShape("a map in a set column".to_owned()),
                        ));
                    }
                    Some(t) => (Some(t.key.atomic), t.value.as_ref().map(|v| v.atomic)),
                    None => (None, None),
                };
                let pairs = seq
                    .next_element_seed(Pairs {
                        kty,
                        vty,
                        slot: self.slot,
                    })?
                    .ok_or_else(|| self.not_a("[\"map\"]"))?;
                Parsed::Datum(Datum::Map(pairs.into_iter().collect()))
            }
            _ => return Err(self.not_a(&format!("[{:?}, ...]", &*tag))),
        };
        if seq.next_element::<IgnoredAny>()?.is_some() {
            return Err(self.not_a(&format!("[{:?}, ...] with extra elements", &*tag)));
        }
        Ok(parsed)
    }
}

/// The elements of a set: `[atom, ...]`.
struct Atoms<'s> {
    ty: Option<AtomicType>,
    slot: &'s ErrorSlot,
}

impl<'de> DeserializeSeed<'de> for Atoms<'_> {
    type Value = Vec<Atom>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Vec<Atom>, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Atoms<'_> {
    type Value = Vec<Atom>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of atoms")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<Atom>, A::Error> {
        let mut atoms = Vec::new();
        while let Some(a) = seq.next_element_seed(AtomSeed {
            ty: self.ty,
            slot: self.slot,
        })? {
            atoms.push(a);
        }
        Ok(atoms)
    }
}

/// The pairs of a map: `[[key, value], ...]`.
struct Pairs<'s> {
    kty: Option<AtomicType>,
    vty: Option<AtomicType>,
    slot: &'s ErrorSlot,
}

impl<'de> DeserializeSeed<'de> for Pairs<'_> {
    type Value = Vec<(Atom, Atom)>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Pairs<'_> {
    type Value = Vec<(Atom, Atom)>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of [key, value] pairs")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut pairs = Vec::new();
        while let Some(p) = seq.next_element_seed(Pair {
            kty: self.kty,
            vty: self.vty,
            slot: self.slot,
        })? {
            pairs.push(p);
        }
        Ok(pairs)
    }
}

struct Pair<'s> {
    kty: Option<AtomicType>,
    vty: Option<AtomicType>,
    slot: &'s ErrorSlot,
}

impl<'de> DeserializeSeed<'de> for Pair<'_> {
    type Value = (Atom, Atom);
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Pair<'_> {
    type Value = (Atom, Atom);
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a [key, value] pair")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let bad = || fail(self.slot, DatumError::NotADatum("a map pair".to_owned()));
        let atom = |ty| AtomSeed {
            ty,
            slot: self.slot,
        };
        let k = seq.next_element_seed(atom(self.kty))?.ok_or_else(bad)?;
        let v = seq.next_element_seed(atom(self.vty))?.ok_or_else(bad)?;
        if seq.next_element::<IgnoredAny>()?.is_some() {
            return Err(bad());
        }
        Ok((k, v))
    }
}

/// A datum of column type `ty` (`None`: a column the schema does not know, untyped).
pub(crate) struct DatumSeed<'s, 't> {
    pub ty: Option<&'t ColumnType>,
    pub slot: &'s ErrorSlot,
}

impl<'de> DeserializeSeed<'de> for DatumSeed<'_, '_> {
    type Value = Datum;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Datum, D::Error> {
        let parsed = d.deserialize_any(Shape {
            slot: self.slot,
            want: Want::Datum(self.ty),
        })?;
        Ok(match parsed {
            Parsed::Datum(d) => d,
            Parsed::Atom(a) => Datum::scalar(a),
        })
    }
}
