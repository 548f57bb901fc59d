//! Typed rows borrowed from the replica's decoded copies: a row is decoded at most once per
//! version, however often a controller re-reads it after monitor updates.

use std::borrow::Cow;

use uuid::Uuid;

use crate::monitor::{Replica, RowRef};

use super::typed::{RowError, TypedRow};

/// A typed row that the replica may keep decoded beside its generic row.
pub trait CachedRow: TypedRow + Clone + Send + Sync + 'static {}
impl<T: TypedRow + Clone + Send + Sync + 'static> CachedRow for T {}

/// `r` as a `T`, decoded at most once per row version (a bad row's error included).
pub fn typed<'a, T: CachedRow>(r: RowRef<'a>) -> Result<Cow<'a, T>, RowError> {
    match r.decoded(|uuid, row| T::from_row(*uuid, row)) {
        Cow::Borrowed(Ok(t)) => Ok(Cow::Borrowed(t)),
        Cow::Borrowed(Err(e)) => Err(e.clone()),
        Cow::Owned(r) => r.map(Cow::Owned),
    }
}

/// [`row`](super::row), borrowed from the replica's decoded copy: free after the first read of a row
/// version.
pub fn cached_row<'a, T: CachedRow>(
    replica: &'a Replica,
    uuid: &Uuid,
) -> Option<Result<Cow<'a, T>, RowError>> {
    replica.row_ref(T::TABLE, uuid).map(typed)
}

/// [`rows`](super::rows), borrowed from the replica's decoded copies.
pub fn cached_rows<T: CachedRow>(
    replica: &Replica,
) -> impl Iterator<Item = Result<Cow<'_, T>, RowError>> {
    replica.table_refs(T::TABLE).map(typed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitor::UpdateFormat;
    use crate::vswitch::test_schema::vswitch_schema;
    use crate::vswitch::{Interface, Port, monitor_requests, rows};
    use serde_json::json;

    #[test]
    fn cached_rows_never_outlive_their_row_version() {
        let mut r = Replica::new(vswitch_schema());
        r.set_monitored(&monitor_requests());
        let (p, i) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let (ps, is) = (p.to_string(), i.to_string());
        r.apply(
            UpdateFormat::Update2,
            &json!({
                "Port": {&ps: {"initial": {"name": "vm1", "interfaces": ["uuid", &is]}}},
                "Interface": {&is: {"initial": {"name": "vm1", "ofport": 3,
                    "external_ids": ["map", [["iface-id", "lp1"]]]}}},
            }),
        )
        .unwrap();
        let iface = |r: &Replica| cached_row::<Interface>(r, &i).map(|x| x.map(Cow::into_owned));
        let first = iface(&r).unwrap().unwrap();
        assert_eq!((first.iface_id(), first.ofport), (Some("lp1"), Some(3)));
        // Read twice: the same decoded copy, borrowed.
        let a = cached_row::<Interface>(&r, &i).unwrap().unwrap();
        let b = cached_row::<Interface>(&r, &i).unwrap().unwrap();
        assert!(matches!((&a, &b), (Cow::Borrowed(x), Cow::Borrowed(y)) if std::ptr::eq(*x, *y)));

        // A map diff and a scalar change: the typed row shows both.
        r.apply(
            UpdateFormat::Update2,
            &json!({"Interface": {&is: {"modify": {"ofport": 4,
                "external_ids": ["map", [["ctl-installed", "true"]]]}}}}),
        )
        .unwrap();
        let second = iface(&r).unwrap().unwrap();
        assert_eq!(second.ofport, Some(4));
        assert_eq!(
            second.external_ids.get("ctl-installed").map(String::as_str),
            Some("true")
        );
        assert_eq!(second.iface_id(), Some("lp1"));
        assert_eq!(rows::<Interface>(&r).next().unwrap().unwrap(), second);
        assert_eq!(cached_rows::<Interface>(&r).count(), 1);

        // A row that does not decode is cached as its error, until it is fixed.
        r.apply(
            UpdateFormat::Update2,
            &json!({"Port": {&ps: {"modify": {"tag": 5}}}}),
        )
        .unwrap();
        assert_eq!(cached_row::<Port>(&r, &p).unwrap().unwrap().tag, Some(5));
        r.apply(
            UpdateFormat::Update,
            &json!({"Port": {&ps: {"old": {"name": "vm1"}, "new": {"name": ["set", ["a", "b"]]}}}}),
        )
        .unwrap();
        assert!(matches!(
            cached_row::<Port>(&r, &p),
            Some(Err(RowError::WrongType { column: "name", .. }))
        ));
        r.apply(
            UpdateFormat::Update2,
            &json!({"Port": {&ps: {"modify": {"name": "vm2"}}}}),
        )
        .unwrap();
        assert_eq!(cached_row::<Port>(&r, &p).unwrap().unwrap().name, "vm2");

        // Deleted rows are gone from the cached reads too.
        r.apply(
            UpdateFormat::Update2,
            &json!({"Interface": {&is: {"delete": null}}, "Port": {&ps: {"delete": null}}}),
        )
        .unwrap();
        assert!(cached_row::<Interface>(&r, &i).is_none());
        assert!(cached_row::<Port>(&r, &p).is_none());
        assert_eq!(cached_rows::<Interface>(&r).count(), 0);
    }
}
