//! Where each object lives under the prefix, and the record codec.
//!
//! Objects nest under what owns them, so that deleting an owner with everything it owns is
//! one range delete of its subtree, however many objects that is:
//!
//! ```text
//! <prefix>/model/revision                                  model revision (decimal)
//! <prefix>/model/format                                    record format version
//! <prefix>/model/switch/<sw>                               LogicalSwitch (JSON)
//! <prefix>/model/switch/<sw>/port/<port>                   LogicalPort
//! <prefix>/model/switch/<sw>/port/<port>/acl/<acl>         Acl
//! <prefix>/model/router/<r>                                LogicalRouter
//! <prefix>/model/router/<r>/rport/<rp>                     RouterPort
//! <prefix>/model/router/<r>/rport/<rp>/route/<route>       Route (next hop in rp's subnets)
//! ```
//!
//! A route sits under the router port whose subnet holds its next hop: a router's port
//! subnets never overlap and router ports are never changed, so that port is fixed for the
//! route's life, and the routes that deleting a router port orphans are exactly its
//! subtree. A record's kind and id are the last two segments of its key; the JSON also
//! carries the id, and the two must agree.

use uuid::Uuid;

use crate::model::{
    Acl, Change, LogicalModel, LogicalPort, LogicalRouter, LogicalSwitch, ObjectKind, Route,
    RouterPort, VtepBinding,
};

/// What a key under the model prefix names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyName {
    Revision,
    Format,
    Object(ObjectKind, Uuid),
}

/// Why a record does not decode.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("key {key:?} is not a Weft model key")]
    Key { key: String },
    #[error("{kind} {id}: {message}")]
    Value {
        kind: ObjectKind,
        id: Uuid,
        message: String,
    },
}

/// The key layout under one prefix.
#[derive(Debug, Clone)]
pub struct KeyLayout {
    /// `<prefix>/model/`
    model: String,
}

fn kind_of(segment: &str) -> Option<ObjectKind> {
    Some(match segment {
        "switch" => ObjectKind::Switch,
        "port" => ObjectKind::Port,
        "acl" => ObjectKind::Acl,
        "router" => ObjectKind::Router,
        "rport" => ObjectKind::RouterPort,
        "route" => ObjectKind::Route,
        "vtepbind" => ObjectKind::VtepBinding,
        _ => return None,
    })
}

/// The end (exclusive) of the range holding `key` and every key beneath it (`key/…`).
pub fn subtree_end(key: &str) -> String {
    // '0' is the byte after '/'; ids are fixed-length, so no sibling starts with `key`.
    format!("{key}0")
}

impl KeyLayout {
    /// `prefix` as given by `--etcd-prefix`; a trailing `/` is ignored.
    pub fn new(prefix: &str) -> Self {
        KeyLayout {
            model: format!("{}/model/", prefix.trim_end_matches('/')),
        }
    }

    /// Every model key starts with this.
    pub fn model_prefix(&self) -> &str {
        &self.model
    }

    pub fn revision_key(&self) -> String {
        format!("{}revision", self.model)
    }

    pub fn format_key(&self) -> String {
        format!("{}format", self.model)
    }

    pub fn switch(&self, sw: Uuid) -> String {
        format!("{}switch/{sw}", self.model)
    }

    pub fn port(&self, sw: Uuid, port: Uuid) -> String {
        format!("{}switch/{sw}/port/{port}", self.model)
    }

    pub fn acl(&self, sw: Uuid, port: Uuid, acl: Uuid) -> String {
        format!("{}switch/{sw}/port/{port}/acl/{acl}", self.model)
    }

    pub fn router(&self, r: Uuid) -> String {
        format!("{}router/{r}", self.model)
    }

    pub fn router_port(&self, r: Uuid, rp: Uuid) -> String {
        format!("{}router/{r}/rport/{rp}", self.model)
    }

    pub fn route(&self, r: Uuid, rp: Option<Uuid>, route: Uuid) -> String {
        match rp {
            Some(rp) => format!("{}router/{r}/rport/{rp}/route/{route}", self.model),
            // Only for a route no port reaches, which the model never holds; kept so that
            // such a record still has a home.
            None => format!("{}router/{r}/route/{route}", self.model),
        }
    }

    /// Hardware VTEP bindings live at the top level, not under their switch: deleting a
    /// switch deletes its bindings explicitly (the writer plans it), not by range.
    pub fn vtep_binding(&self, b: Uuid) -> String {
        format!("{}vtepbind/{b}", self.model)
    }

    /// The key of `acl` in `model`, which must hold its port.
    fn acl_key(&self, model: &LogicalModel, a: &Acl) -> Option<String> {
        let port = model.port(&a.port)?;
        Some(self.acl(port.switch, port.id, a.id))
    }

    fn route_key(&self, model: &LogicalModel, r: &Route) -> String {
        let rp = model
            .ports_of_router(&r.router)
            .find(|p| p.subnets().any(|s| s.contains(&r.nexthop)))
            .map(|p| p.id);
        self.route(r.router, rp, r.id)
    }

    /// Where the object `change` writes lives, looked up in `model` (the model just before
    /// `change`); None when an owner it needs is not in `model`.
    pub fn key_of(&self, model: &LogicalModel, change: &Change) -> Option<String> {
        Some(match change {
            Change::PutSwitch(s) => self.switch(s.id),
            Change::PutPort(p) => self.port(p.switch, p.id),
            Change::PutAcl(a) => self.acl_key(model, a)?,
            Change::PutRouter(r) => self.router(r.id),
            Change::PutRouterPort(rp) => self.router_port(rp.router, rp.id),
            Change::PutRoute(r) => self.route_key(model, r),
            Change::PutVtepBinding(b) => self.vtep_binding(b.id),
            Change::DeleteVtepBinding { id } => self.vtep_binding(*id),
            Change::DeleteSwitch { id } => self.switch(*id),
            Change::DeletePort { id } => {
                let p = model.port(id)?;
                self.port(p.switch, p.id)
            }
            Change::DeleteAcl { id } => self.acl_key(model, model.acl(id)?)?,
            Change::DeleteRouter { id } => self.router(*id),
            Change::DeleteRouterPort { id } => {
                let rp = model.router_port(id)?;
                self.router_port(rp.router, rp.id)
            }
            Change::DeleteRoute { id } => self.route_key(model, model.route(id)?),
        })
    }

    /// Keys of every object stored beneath `change`'s object in `model` (what a range
    /// delete of its subtree removes besides itself).
    pub fn descendants(&self, model: &LogicalModel, change: &Change) -> Vec<String> {
        let acls_of = |p: &LogicalPort| -> Vec<String> {
            model
                .acls_of_port(&p.id)
                .map(|a| self.acl(p.switch, p.id, a.id))
                .collect()
        };
        let routes_of = |rp: &RouterPort| -> Vec<String> {
            model
                .routes_of_router(&rp.router)
                .filter(|r| self.route_key(model, r) == self.route(rp.router, Some(rp.id), r.id))
                .map(|r| self.route(rp.router, Some(rp.id), r.id))
                .collect()
        };
        match change {
            Change::DeleteSwitch { id } => model
                .ports_of_switch(id)
                .flat_map(|p| {
                    let mut keys = acls_of(p);
                    keys.push(self.port(p.switch, p.id));
                    keys
                })
                .collect(),
            Change::DeletePort { id } => model.port(id).map(acls_of).unwrap_or_default(),
            Change::DeleteRouter { id } => model
                .ports_of_router(id)
                .flat_map(|rp| {
                    let mut keys = routes_of(rp);
                    keys.push(self.router_port(rp.router, rp.id));
                    keys
                })
                .chain(model.routes_of_router(id).map(|r| self.route_key(model, r)))
                .collect(),
            Change::DeleteRouterPort { id } => {
                model.router_port(id).map(routes_of).unwrap_or_default()
            }
            _ => Vec::new(),
        }
    }

    /// What `key` names; None for a key outside the model prefix or of unknown shape.
    pub fn parse(&self, key: &[u8]) -> Option<KeyName> {
        let key = std::str::from_utf8(key).ok()?;
        let rest = key.strip_prefix(self.model.as_str())?;
        match rest {
            "revision" => return Some(KeyName::Revision),
            "format" => return Some(KeyName::Format),
            _ => {}
        }
        let segments: Vec<&str> = rest.split('/').collect();
        if !segments.len().is_multiple_of(2) || segments.len() > 6 {
            return None;
        }
        let mut last = None;
        for pair in segments.chunks(2) {
            let [kind, id] = pair else { return None };
            last = Some((kind_of(kind)?, Uuid::parse_str(id).ok()?));
        }
        let (kind, id) = last?;
        Some(KeyName::Object(kind, id))
    }

    /// Decodes a put of an object record into the change it stands for.
    pub fn decode(&self, key: &[u8], value: &[u8]) -> Result<Change, RecordError> {
        let Some(KeyName::Object(kind, id)) = self.parse(key) else {
            return Err(RecordError::Key {
                key: String::from_utf8_lossy(key).into_owned(),
            });
        };
        let bad = |message: String| RecordError::Value { kind, id, message };
        let change = match kind {
            ObjectKind::Switch => {
                serde_json::from_slice::<LogicalSwitch>(value).map(Change::PutSwitch)
            }
            ObjectKind::Port => serde_json::from_slice::<LogicalPort>(value).map(Change::PutPort),
            ObjectKind::Acl => serde_json::from_slice::<Acl>(value).map(Change::PutAcl),
            ObjectKind::Router => {
                serde_json::from_slice::<LogicalRouter>(value).map(Change::PutRouter)
            }
            ObjectKind::RouterPort => {
                serde_json::from_slice::<RouterPort>(value).map(Change::PutRouterPort)
            }
            ObjectKind::Route => serde_json::from_slice::<Route>(value).map(Change::PutRoute),
            ObjectKind::VtepBinding => {
                serde_json::from_slice::<VtepBinding>(value).map(Change::PutVtepBinding)
            }
        }
        .map_err(|e| bad(e.to_string()))?;
        if change.id() != id {
            return Err(bad(format!("record carries id {}", change.id())));
        }
        Ok(change)
    }

    /// The change a deleted key stands for.
    pub fn deletion(&self, key: &[u8]) -> Option<Change> {
        let KeyName::Object(kind, id) = self.parse(key)? else {
            return None;
        };
        Some(match kind {
            ObjectKind::Switch => Change::DeleteSwitch { id },
            ObjectKind::Port => Change::DeletePort { id },
            ObjectKind::Acl => Change::DeleteAcl { id },
            ObjectKind::Router => Change::DeleteRouter { id },
            ObjectKind::RouterPort => Change::DeleteRouterPort { id },
            ObjectKind::Route => Change::DeleteRoute { id },
            ObjectKind::VtepBinding => Change::DeleteVtepBinding { id },
        })
    }
}

/// The record of a put, as stored.
pub fn encode(change: &Change) -> Option<Vec<u8>> {
    let bytes = match change {
        Change::PutSwitch(s) => serde_json::to_vec(s),
        Change::PutPort(p) => serde_json::to_vec(p),
        Change::PutAcl(a) => serde_json::to_vec(a),
        Change::PutRouter(r) => serde_json::to_vec(r),
        Change::PutRouterPort(rp) => serde_json::to_vec(rp),
        Change::PutRoute(r) => serde_json::to_vec(r),
        Change::PutVtepBinding(b) => serde_json::to_vec(b),
        _ => return None,
    };
    bytes.ok()
}

/// Orders the changes of one committed revision so that they apply cleanly: deletions
/// first, owned objects before their owners; then puts, owners before what they own.
pub fn apply_order(change: &Change) -> (u8, u8) {
    let depth = match change.kind() {
        ObjectKind::Switch | ObjectKind::Router => 0,
        ObjectKind::Port | ObjectKind::RouterPort | ObjectKind::VtepBinding => 1,
        ObjectKind::Acl | ObjectKind::Route => 2,
    };
    if change.is_delete() {
        (0, 2 - depth)
    } else {
        (1, depth)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_parse_back_to_kind_and_id() {
        let l = KeyLayout::new("/weft/");
        let (sw, p, a) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        assert_eq!(
            l.parse(l.acl(sw, p, a).as_bytes()),
            Some(KeyName::Object(ObjectKind::Acl, a))
        );
        assert_eq!(
            l.parse(l.port(sw, p).as_bytes()),
            Some(KeyName::Object(ObjectKind::Port, p))
        );
        assert_eq!(l.parse(b"/weft/model/revision"), Some(KeyName::Revision));
        assert_eq!(l.parse(b"/weft/model/switch/nope"), None);
        assert_eq!(l.parse(b"/weft/model/bogus/x/y"), None);
        assert_eq!(l.parse(b"/other/model/revision"), None);
        assert_eq!(l.parse(&[0xff, 0xfe]), None);
        assert!(l.port(sw, p) > l.switch(sw) && l.port(sw, p) < subtree_end(&l.switch(sw)));
    }

    #[test]
    fn a_record_whose_id_differs_from_its_key_is_refused() {
        let l = KeyLayout::new("/weft");
        let s = LogicalSwitch {
            id: Uuid::new_v4(),
            name: "a".into(),
            vni: 1,
            description: String::new(),
            provider: None,
            flood_vteps: Vec::new(),
        };
        let value = encode(&Change::PutSwitch(s.clone())).unwrap();
        assert!(l.decode(l.switch(s.id).as_bytes(), &value).is_ok());
        assert!(
            l.decode(l.switch(Uuid::new_v4()).as_bytes(), &value)
                .is_err()
        );
        assert!(l.decode(l.switch(s.id).as_bytes(), b"{garbage").is_err());
    }
}
