//! Reading the whole model out of etcd: page by page, every page at the same etcd
//! revision (so the result is one consistent snapshot however large the model is, and no
//! response grows past gRPC's message limit), each record checked.

use etcd_client::{Compare, CompareOp, GetOptions, KvClient, Txn, TxnOp};

use super::keys::{KeyLayout, KeyName, subtree_end};
use super::{EtcdSettings, bounded};
use crate::model::Change;
use crate::store::{FORMAT_VERSION, StoreError, StoredModel};

/// Records per page.
const PAGE: i64 = 2000;

/// A revision key's value: a decimal u64.
pub fn parse_revision(value: &[u8]) -> Option<u64> {
    std::str::from_utf8(value).ok()?.trim().parse().ok()
}

/// Creates `revision` (0) and `format` under a prefix that has none yet. Another instance
/// doing the same at once is harmless: only one transaction finds the key absent.
pub async fn init(
    settings: &EtcdSettings,
    layout: &KeyLayout,
    kv: &mut KvClient,
) -> Result<(), StoreError> {
    let txn = Txn::new()
        .when([Compare::version(layout.revision_key(), CompareOp::Equal, 0)])
        .and_then([
            TxnOp::put(layout.revision_key(), "0", None),
            TxnOp::put(layout.format_key(), FORMAT_VERSION.to_string(), None),
        ]);
    bounded(settings, "initialise the prefix", kv.txn(txn)).await?;
    Ok(())
}

/// The whole model and the etcd revision it was read at.
pub async fn read_model(
    settings: &EtcdSettings,
    layout: &KeyLayout,
    kv: &mut KvClient,
) -> Result<(StoredModel, i64), StoreError> {
    let location = || std::path::PathBuf::from(settings.location());
    let end = subtree_end(layout.model_prefix().trim_end_matches('/'));
    let mut from = layout.model_prefix().to_string().into_bytes();
    let mut at: Option<i64> = None;
    let mut model = StoredModel::default();
    let mut revision = None;
    loop {
        let mut options = GetOptions::new().with_range(end.clone()).with_limit(PAGE);
        if let Some(at) = at {
            options = options.with_revision(at);
        }
        let resp = bounded(
            settings,
            "read the model",
            kv.get(from.clone(), Some(options)),
        )
        .await?;
        let header_rev = resp.header().map_or(0, |h| h.revision());
        let at = *at.get_or_insert(header_rev);
        for entry in resp.kvs() {
            match layout.parse(entry.key()) {
                Some(KeyName::Revision) => revision = parse_revision(entry.value()),
                Some(KeyName::Format) => {
                    let found = parse_revision(entry.value()).unwrap_or(0);
                    if found != FORMAT_VERSION {
                        return Err(StoreError::Format {
                            path: location(),
                            found,
                        });
                    }
                }
                Some(KeyName::Object(..)) => {
                    let change = layout.decode(entry.key(), entry.value()).map_err(|e| {
                        StoreError::Inconsistent {
                            path: location(),
                            message: e.to_string(),
                        }
                    })?;
                    push(&mut model, change);
                }
                None => tracing::warn!(
                    key = %String::from_utf8_lossy(entry.key()),
                    "ignoring a key under the model prefix that is not a Weft record"
                ),
            }
        }
        match resp.kvs().last() {
            Some(last) if resp.more() => {
                from = last.key().to_vec();
                from.push(0);
            }
            _ => {
                model.revision = revision.ok_or_else(|| StoreError::Inconsistent {
                    path: location(),
                    message: format!("{} is missing or not a number", layout.revision_key()),
                })?;
                return Ok((model, at));
            }
        }
    }
}

fn push(model: &mut StoredModel, change: Change) {
    match change {
        Change::PutSwitch(s) => model.switches.push(s),
        Change::PutPort(p) => model.ports.push(p),
        Change::PutAcl(a) => model.acls.push(a),
        Change::PutRouter(r) => model.routers.push(r),
        Change::PutRouterPort(rp) => model.router_ports.push(rp),
        Change::PutRoute(r) => model.routes.push(r),
        Change::PutVtepBinding(b) => model.vtep_bindings.push(b),
        _ => {}
    }
}
