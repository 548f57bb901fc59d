//! What RFC 7047's condition functions (`includes`, `excludes`) and mutators do to one
//! datum.

use ovsdb::datum::AtomSet;
use ovsdb::{Atom, Datum};

use super::OpError;

pub(super) fn includes(have: &Datum, want: &Datum) -> bool {
    match (have, want) {
        (Datum::Set(h), Datum::Set(w)) => w.iter().all(|a| h.contains(a)),
        (Datum::Map(h), Datum::Map(w)) => w.iter().all(|(k, v)| h.get(k) == Some(v)),
        (_, w) => w.is_empty(),
    }
}

pub(super) fn excludes(have: &Datum, want: &Datum) -> bool {
    match (have, want) {
        (Datum::Set(h), Datum::Set(w)) => !w.iter().any(|a| h.contains(a)),
        (Datum::Map(h), Datum::Map(w)) => w.iter().all(|(k, v)| h.get(k) != Some(v)),
        _ => true,
    }
}

pub(super) fn mutate(cur: &Datum, mutator: &str, arg: &Datum) -> Result<Datum, OpError> {
    match (mutator, cur, arg) {
        ("insert", Datum::Set(c), Datum::Set(a)) => {
            Ok(Datum::Set(c.iter().chain(a).cloned().collect()))
        }
        ("insert", Datum::Map(c), Datum::Map(a)) => {
            let mut m = c.clone();
            for (k, v) in a {
                if !m.contains_key(k) {
                    m.insert(k.clone(), v.clone());
                }
            }
            Ok(Datum::Map(m))
        }
        ("insert", Datum::Set(c), Datum::Map(_)) if c.is_empty() => {
            mutate(&Datum::empty_map(), mutator, arg)
        }
        ("delete", Datum::Set(c), Datum::Set(a)) => Ok(Datum::Set(
            c.iter().filter(|x| !a.contains(x)).cloned().collect(),
        )),
        ("delete", Datum::Map(c), Datum::Set(keys)) => {
            let mut m = c.clone();
            for k in keys {
                m.remove(k);
            }
            Ok(Datum::Map(m))
        }
        ("delete", Datum::Map(c), Datum::Map(pairs)) => {
            let mut m = c.clone();
            for (k, v) in pairs {
                if m.get(k) == Some(v) {
                    m.remove(k);
                }
            }
            Ok(Datum::Map(m))
        }
        ("delete", Datum::Set(c), Datum::Map(_)) if c.is_empty() => Ok(cur.clone()),
        ("+=" | "-=" | "*=" | "/=" | "%=", Datum::Set(c), _) => {
            let Some(Atom::Integer(by)) = arg.as_scalar() else {
                return Err(OpError::syntax(format!("{mutator} needs an integer")));
            };
            let mut out = AtomSet::new();
            for a in c {
                let Atom::Integer(x) = a else {
                    return Err(OpError::syntax(format!(
                        "{mutator} on a non-integer column"
                    )));
                };
                let v = match mutator {
                    "+=" => x.checked_add(*by),
                    "-=" => x.checked_sub(*by),
                    "*=" => x.checked_mul(*by),
                    "/=" => x.checked_div(*by),
                    _ => x.checked_rem(*by),
                };
                let v =
                    v.ok_or_else(|| OpError::new("range error", format!("{x} {mutator} {by}")))?;
                out.insert(Atom::Integer(v));
            }
            Ok(Datum::Set(out))
        }
        _ => Err(OpError::syntax(format!(
            "mutator {mutator} does not apply to {cur}"
        ))),
    }
}
