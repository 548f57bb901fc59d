//! [`RedbStore`], the default embedded backend: one redb file, one table per
//! object kind holding the object's JSON, and a metadata table with the format version
//! and the revision. Each commit is a redb write transaction with `Durability::Immediate`,
//! which fsyncs before `commit` returns, so an acknowledged write survives `kill -9` and
//! power loss, and a half-applied batch can never be observed.

use std::path::{Path, PathBuf};

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::de::DeserializeOwned;
use uuid::Uuid;

use super::{FORMAT_VERSION, Store, StoreError, StoredModel};
use crate::model::{
    Acl, Change, LogicalPort, LogicalRouter, LogicalSwitch, Route, RouterPort, VtepBinding,
};

/// Name of the database file inside the data directory.
pub const STORE_FILE: &str = "weft.redb";

const META: TableDefinition<'_, &str, u64> = TableDefinition::new("meta");
const SWITCHES: TableDefinition<'_, u128, &[u8]> = TableDefinition::new("switches");
const PORTS: TableDefinition<'_, u128, &[u8]> = TableDefinition::new("ports");
const ACLS: TableDefinition<'_, u128, &[u8]> = TableDefinition::new("acls");
const ROUTERS: TableDefinition<'_, u128, &[u8]> = TableDefinition::new("routers");
const ROUTER_PORTS: TableDefinition<'_, u128, &[u8]> = TableDefinition::new("router_ports");
const ROUTES: TableDefinition<'_, u128, &[u8]> = TableDefinition::new("routes");
const VTEP_BINDINGS: TableDefinition<'_, u128, &[u8]> = TableDefinition::new("vtep_bindings");

/// The embedded redb-backed store.
pub struct RedbStore {
    path: PathBuf,
    db: Option<Database>,
}

impl std::fmt::Debug for RedbStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedbStore")
            .field("path", &self.path)
            .finish()
    }
}

impl RedbStore {
    /// Opens (or creates, if the directory holds no store yet) `<data_dir>/weft.redb`.
    ///
    /// An existing file is opened with redb's integrity check on, so garbage or a torn
    /// file is reported instead of being treated as an empty store.
    pub fn open(data_dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(data_dir).map_err(|source| StoreError::CreateDir {
            path: data_dir.to_path_buf(),
            source,
        })?;
        let path = data_dir.join(STORE_FILE);
        let mut builder = Database::builder();
        builder.set_check_integrity_on_open(true);
        // The whole model lives in memory already; redb's cache only needs to hold the
        // pages a commit touches.
        builder.set_cache_size(16 * 1024 * 1024);
        let exists = std::fs::metadata(&path)
            .map(|m| m.len() > 0)
            .unwrap_or(false);
        let opened = if exists {
            builder.open(&path)
        } else {
            builder.create(&path)
        };
        let db = opened.map_err(|source| match source {
            redb::DatabaseError::Storage(redb::StorageError::Corrupted(_)) => {
                StoreError::Corrupt { path: path.clone() }
            }
            source => StoreError::Open {
                path: path.clone(),
                source,
            },
        })?;
        let mut store = RedbStore { path, db: Some(db) };
        store.init()?;
        Ok(store)
    }

    fn io(&self, e: impl Into<redb::Error>) -> StoreError {
        StoreError::Io {
            path: self.path.clone(),
            source: e.into(),
        }
    }

    fn encode<T: serde::Serialize>(&self, value: &T) -> Result<Vec<u8>, StoreError> {
        serde_json::to_vec(value).map_err(|e| StoreError::Io {
            path: self.path.clone(),
            source: redb::Error::Io(std::io::Error::other(e)),
        })
    }

    fn db(&self) -> Result<&Database, StoreError> {
        self.db.as_ref().ok_or(StoreError::Closed)
    }

    /// Creates the tables and format marker in a fresh file; checks the marker otherwise.
    fn init(&mut self) -> Result<(), StoreError> {
        let db = self.db()?;
        let txn = db.begin_write().map_err(|e| self.io(e))?;
        let found = {
            let mut meta = txn.open_table(META).map_err(|e| self.io(e))?;
            let found = meta
                .get("format")
                .map_err(|e| self.io(e))?
                .map(|v| v.value());
            if found.is_none() {
                meta.insert("format", FORMAT_VERSION)
                    .map_err(|e| self.io(e))?;
                meta.insert("revision", 0).map_err(|e| self.io(e))?;
            }
            txn.open_table(SWITCHES).map_err(|e| self.io(e))?;
            txn.open_table(PORTS).map_err(|e| self.io(e))?;
            // Stores written before routing existed gain the routing tables here: adding
            // empty tables is all their upgrade needs, so the format version stays.
            // The same holds for the hardware VTEP bindings.
            for table in [ACLS, ROUTERS, ROUTER_PORTS, ROUTES, VTEP_BINDINGS] {
                txn.open_table(table).map_err(|e| self.io(e))?;
            }
            found
        };
        if let Some(found) = found
            && found != FORMAT_VERSION
        {
            return Err(StoreError::Format {
                path: self.path.clone(),
                found,
            });
        }
        txn.commit().map_err(|e| self.io(e))?;
        Ok(())
    }

    /// Reads one table; each record must decode and carry the id it is stored under
    /// (a mismatch would silently alias two objects).
    fn read_all<T: DeserializeOwned>(
        &self,
        txn: &redb::ReadTransaction,
        def: TableDefinition<'_, u128, &[u8]>,
        kind: &'static str,
        id_of: fn(&T) -> Uuid,
    ) -> Result<Vec<T>, StoreError> {
        let table = txn.open_table(def).map_err(|e| self.io(e))?;
        let mut out = Vec::new();
        for entry in table.iter().map_err(|e| self.io(e))? {
            let (k, v) = entry.map_err(|e| self.io(e))?;
            let id = Uuid::from_u128(k.value());
            let value: T = serde_json::from_slice(v.value()).map_err(|e| StoreError::Record {
                path: self.path.clone(),
                kind,
                id,
                message: e.to_string(),
            })?;
            if id_of(&value) != id {
                return Err(StoreError::Record {
                    path: self.path.clone(),
                    kind,
                    id,
                    message: format!("record carries id {}", id_of(&value)),
                });
            }
            out.push(value);
        }
        Ok(out)
    }
}

impl Store for RedbStore {
    fn load(&mut self) -> Result<StoredModel, StoreError> {
        let db = self.db()?;
        let txn = db.begin_read().map_err(|e| self.io(e))?;
        let meta = txn.open_table(META).map_err(|e| self.io(e))?;
        let revision = meta
            .get("revision")
            .map_err(|e| self.io(e))?
            .map_or(0, |v| v.value());
        let switches: Vec<LogicalSwitch> =
            self.read_all(&txn, SWITCHES, "switch", |s: &LogicalSwitch| s.id)?;
        let ports: Vec<LogicalPort> = self.read_all(&txn, PORTS, "port", |p: &LogicalPort| p.id)?;
        let acls: Vec<Acl> = self.read_all(&txn, ACLS, "acl", |a: &Acl| a.id)?;
        let routers = self.read_all(&txn, ROUTERS, "router", |r: &LogicalRouter| r.id)?;
        let router_ports =
            self.read_all(&txn, ROUTER_PORTS, "router_port", |rp: &RouterPort| rp.id)?;
        let routes = self.read_all(&txn, ROUTES, "route", |r: &Route| r.id)?;
        let vtep_bindings =
            self.read_all(&txn, VTEP_BINDINGS, "vtep_binding", |b: &VtepBinding| b.id)?;
        Ok(StoredModel {
            revision,
            switches,
            ports,
            acls,
            routers,
            router_ports,
            routes,
            vtep_bindings,
        })
    }

    fn commit(&mut self, revision: u64, changes: &[Change]) -> Result<(), StoreError> {
        let db = self.db()?;
        let mut txn = db.begin_write().map_err(|e| self.io(e))?;
        txn.set_durability(redb::Durability::Immediate)
            .map_err(|e| StoreError::Io {
                path: self.path.clone(),
                source: redb::Error::from(redb::StorageError::Io(std::io::Error::other(
                    e.to_string(),
                ))),
            })?;
        {
            let mut meta = txn.open_table(META).map_err(|e| self.io(e))?;
            let mut switches = txn.open_table(SWITCHES).map_err(|e| self.io(e))?;
            let mut ports = txn.open_table(PORTS).map_err(|e| self.io(e))?;
            let mut acls = txn.open_table(ACLS).map_err(|e| self.io(e))?;
            let mut routers = txn.open_table(ROUTERS).map_err(|e| self.io(e))?;
            let mut router_ports = txn.open_table(ROUTER_PORTS).map_err(|e| self.io(e))?;
            let mut routes = txn.open_table(ROUTES).map_err(|e| self.io(e))?;
            let mut vtep_bindings = txn.open_table(VTEP_BINDINGS).map_err(|e| self.io(e))?;
            for change in changes {
                let (table, bytes) = match change {
                    Change::PutSwitch(s) => (&mut switches, Some(self.encode(s)?)),
                    Change::PutPort(p) => (&mut ports, Some(self.encode(p)?)),
                    Change::PutAcl(a) => (&mut acls, Some(self.encode(a)?)),
                    Change::DeleteSwitch { .. } => (&mut switches, None),
                    Change::DeletePort { .. } => (&mut ports, None),
                    Change::DeleteAcl { .. } => (&mut acls, None),
                    Change::PutRouter(r) => (&mut routers, Some(self.encode(r)?)),
                    Change::PutRouterPort(rp) => (&mut router_ports, Some(self.encode(rp)?)),
                    Change::PutRoute(r) => (&mut routes, Some(self.encode(r)?)),
                    Change::DeleteRouter { .. } => (&mut routers, None),
                    Change::DeleteRouterPort { .. } => (&mut router_ports, None),
                    Change::DeleteRoute { .. } => (&mut routes, None),
                    Change::PutVtepBinding(b) => (&mut vtep_bindings, Some(self.encode(b)?)),
                    Change::DeleteVtepBinding { .. } => (&mut vtep_bindings, None),
                };
                let key = change.id().as_u128();
                match bytes {
                    Some(bytes) => {
                        table
                            .insert(key, bytes.as_slice())
                            .map_err(|e| self.io(e))?;
                    }
                    None => {
                        table.remove(key).map_err(|e| self.io(e))?;
                    }
                }
            }
            meta.insert("revision", revision).map_err(|e| self.io(e))?;
        }
        txn.commit().map_err(|e| self.io(e))?;
        Ok(())
    }

    fn location(&self) -> String {
        self.path.display().to_string()
    }
}

impl Drop for RedbStore {
    fn drop(&mut self) {
        if let Some(db) = self.db.take()
            && let Err(e) = db.close()
        {
            tracing::warn!(path = %self.path.display(), error = %e, "closing store");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::MacAddr;

    #[test]
    fn commit_and_reload() {
        let dir = tempfile::tempdir().unwrap();
        let sw = LogicalSwitch {
            id: Uuid::new_v4(),
            name: "web".into(),
            vni: 7,
            description: String::new(),
            provider: None,
            flood_vteps: Vec::new(),
        };
        let port = LogicalPort {
            id: Uuid::new_v4(),
            name: "vm1".into(),
            switch: sw.id,
            mac: MacAddr([2, 0, 0, 0, 0, 1]),
            ips: vec![],
            port_security: true,
            key: 1,
            zone: 1,
        };
        {
            let mut s = RedbStore::open(dir.path()).unwrap();
            assert_eq!(s.load().unwrap().revision, 0);
            s.commit(1, &[Change::PutSwitch(sw.clone())]).unwrap();
            s.commit(2, &[Change::PutPort(port.clone())]).unwrap();
        }
        let mut s = RedbStore::open(dir.path()).unwrap();
        let m = s.load().unwrap();
        assert_eq!(m.revision, 2);
        assert_eq!(m.switches, vec![sw]);
        assert_eq!(m.ports, vec![port.clone()]);
        s.commit(3, &[Change::DeletePort { id: port.id }]).unwrap();
        assert!(s.load().unwrap().ports.is_empty());
        let binding = VtepBinding {
            id: Uuid::new_v4(),
            vtep: "br0".into(),
            port: "p0".into(),
            vlan: 100,
            switch: m.switches[0].id,
        };
        s.commit(4, &[Change::PutVtepBinding(binding.clone())])
            .unwrap();
        drop(s);
        let mut s = RedbStore::open(dir.path()).unwrap();
        assert_eq!(s.load().unwrap().vtep_bindings, vec![binding.clone()]);
        s.commit(5, &[Change::DeleteVtepBinding { id: binding.id }])
            .unwrap();
        assert!(s.load().unwrap().vtep_bindings.is_empty());
    }

    #[test]
    fn garbage_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(STORE_FILE), vec![0x5a; 8192]).unwrap();
        let err = RedbStore::open(dir.path()).unwrap_err();
        assert!(err.to_string().contains("weft.redb"), "{err}");
    }
}
