//! One pass of a session: bring the integration bridge, the tunnel ports, the patch
//! ports to the physical networks' bridges and the `weft-installed` marks to what Weft
//! wants, and report what the bridge holds.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use ovsdb::vswitch::{self, Bridge, Interface};
use ovsdb::{Client, Event, Replica, Transaction};
use tokio::sync::mpsc;
use uuid::Uuid;

use super::fence::{Fence, plan_controllers};
use super::memo::Published;
use super::session::*;
use super::settings::{NodeSettings, encap_name, node_settings, patch_port_names, vtep_port_name};
use super::*;
use crate::cluster::Role;
use crate::desired::{PatchSpec, TunnelSpec};
use crate::observed::TransportNode;
use crate::southbound::HYPERVISOR_INACTIVITY_PROBE_MS;
use crate::topology::{NodeView, Vif};

impl Session {
    /// One pass: identify the node, then bring each part of the database to what Weft
    /// wants and publish what it shows.
    pub(super) async fn converge(
        &mut self,
        client: &Client,
        replica: &Replica,
        events: &mut mpsc::Receiver<Event>,
    ) -> Result<(), SessionEnd> {
        let root = match vswitch::cached_root(replica) {
            None => {
                self.wait_for("the database has no Open_vSwitch row".into());
                return Ok(());
            }
            Some(Err(e)) => {
                self.wait_for(format!("unreadable Open_vSwitch row: {e}"));
                return Ok(());
            }
            Some(Ok(r)) => r,
        };
        let settings = match node_settings(&root) {
            Ok(s) => s,
            Err(why) => {
                self.wait_for(why);
                return Ok(());
            }
        };
        self.check_identity(&settings.id)?;
        let id = settings.id.clone();
        let mapping_errors = settings.mapping_errors.clone();
        if !self.identify(settings) {
            return Ok(());
        }
        if self.seen.waiting.take().is_some() {
            tracing::info!(peer = %self.peer, node = %id, "no longer waiting");
        }
        if mapping_errors != self.seen.mapping_errors {
            for e in mapping_errors
                .iter()
                .filter(|e| !self.seen.mapping_errors.contains(e))
            {
                tracing::warn!(node = %id, "{e}");
            }
            self.seen.mapping_errors = mapping_errors;
        }
        let Some(node) = self.node.clone() else {
            return Ok(());
        };

        // 0. Cluster mode: only the owner writes, behind its fence, and only it follows
        // the whole bridge (`Scope`).
        let standing = self.standing_now();
        let clustered = self.shared.ctx.ownership.view().clustered;
        let scope = if clustered && !standing.role.is_owner() {
            Scope::Root
        } else {
            Scope::Full
        };
        if scope != self.scope {
            tracing::debug!(node = %node.id, role = ?standing.role, ?scope,
                "switching the monitor to this instance's standing");
            self.standing = Some(standing);
            self.rescope = Some(scope);
            return Ok(());
        }
        if scope == Scope::Root {
            self.fence = None;
            self.standing = Some(standing);
            self.publish_identity(&node);
            return Ok(());
        }
        self.fence = match standing.role {
            Role::Owner {
                generation: Some(g),
            } => Some(Fence::new(
                root.uuid,
                self.shared.ctx.ownership.instance(),
                g,
            )),
            _ => None,
        };
        let mut owner = standing.role.is_owner();
        if let Some(fence) = self.fence.clone()
            && !fence.is_set(&root.external_ids)
        {
            // Nothing else until the replica shows the fence (or the write failed).
            owner = false;
            if self.may_write(WriteKind::Fence) {
                tracing::info!(node = %node.id, fence = %fence.value,
                    "owner of this hypervisor: fencing its database");
                self.write(client, events, WriteKind::Fence, &fence.write())
                    .await?;
            }
        }
        let wanted_controllers = standing.controllers.clone();
        // Weft's Manager rows: the one this session came in through, and those of every
        // live instance (in cluster mode each hypervisor has one per instance).
        let mut weft_managers = standing.managers.clone();
        weft_managers.extend(self.reached_at);
        self.standing = Some(standing);

        // 1. The integration bridge.
        let bridge = match vswitch::cached_bridge_by_name(replica, &node.bridge).transpose() {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(node = %node.id, error = %e, "unreadable bridge row");
                None
            }
        };
        let spec = vswitch::BridgeSpec {
            name: node.bridge.clone(),
            fail_mode: Some("secure".into()),
            protocols: vec!["OpenFlow13".into()],
            // Only for a bridge we create: never change an existing bridge's datapath.
            datapath_type: if bridge.is_none() {
                node.datapath_type.clone()
            } else {
                None
            },
            // In cluster mode the Controller rows are one per instance (step 1b); only a
            // bridge created here starts with this instance's.
            controller: if clustered && bridge.is_some() {
                None
            } else {
                self.shared.cfg.controller_target()
            },
            controller_max_backoff: Some(CONTROLLER_MAX_BACKOFF_MS),
            controller_inactivity_probe: Some(HYPERVISOR_INACTIVITY_PROBE_MS),
            other_config: BTreeMap::from([("disable-in-band".into(), "true".into())]),
            external_ids: BTreeMap::new(),
        };
        if owner
            && self.may_write(WriteKind::Bridge)
            && self.memo.bridge_clean != Some(self.generation)
        {
            match vswitch::ensure_bridge(replica, root.uuid, &spec) {
                Ok(Some(txn)) => {
                    let what = if bridge.is_none() {
                        "creating"
                    } else {
                        "repairing"
                    };
                    tracing::info!(node = %node.id, bridge = %node.bridge, "{what} integration bridge");
                    self.write(client, events, WriteKind::Bridge, &txn).await?;
                }
                Ok(None) => self.memo.bridge_clean = Some(self.generation),
                Err(e) => tracing::warn!(node = %node.id, error = %e, "cannot plan bridge"),
            }
        }
        let Some(bridge) = bridge else {
            return Ok(());
        };

        // 1b. Cluster mode: a Controller row per live instance, one change at a time.
        if owner
            && clustered
            && self.may_write(WriteKind::Controllers)
            && let Some((txn, what)) = plan_controllers(replica, &bridge, &wanted_controllers)
        {
            tracing::info!(node = %node.id, "{what}");
            self.write(client, events, WriteKind::Controllers, &txn)
                .await?;
        }

        // 1c. Weft's Manager rows: out of in-band control, and probed by weftd alone. Weft's traffic never crosses br-int (its in-band is off),
        // and in-band control for a manager costs the switch hidden flows re-checked on
        // every pass of its main loop, on every bridge on the path (about a quarter of an
        // idle userspace switch's CPU); see HYPERVISOR_INACTIVITY_PROBE_MS for the probe.
        if owner
            && self.may_write(WriteKind::Manager)
            && let Some(txn) = vswitch::manager_settings(
                replica,
                &root,
                &weft_managers,
                HYPERVISOR_INACTIVITY_PROBE_MS,
            )
        {
            tracing::info!(node = %node.id, managers = ?weft_managers,
                "Weft's manager connections: out of in-band control, probed by weftd");
            self.write(client, events, WriteKind::Manager, &txn).await?;
        }

        // 1d. A switch that restarted before its way to us was back: make it dial now.
        if owner && scope == Scope::Full {
            self.redial_if_due(client, events, replica, &node, &bridge)
                .await?;
        }

        // 2. What the bridge holds: VIFs and Weft's tunnels.
        let fresh = self
            .memo
            .published
            .as_ref()
            .is_some_and(|p| p.generation == self.contents_generation);
        if !fresh {
            let contents = self.read_bridge(replica, &node, &bridge);
            let datapath_id = bridge
                .datapath_id
                .as_deref()
                .and_then(|s| u64::from_str_radix(s.trim(), 16).ok());
            self.publish(&node, datapath_id, &contents);
            let vifs = contents.vifs;
            self.memo.published = Some(Published {
                generation: self.contents_generation,
                vifs: Arc::new(vifs),
            });
        }
        let vifs = self
            .memo
            .published
            .as_ref()
            .map(|p| p.vifs.clone())
            .unwrap_or_default();

        // 3. Tunnel ports.
        if owner
            && self.may_write(WriteKind::Tunnels)
            && let Some(txn) = self.plan_tunnels(replica, &node, &bridge)
        {
            self.write(client, events, WriteKind::Tunnels, &txn).await?;
        }

        // 3b. Patch ports to the physical networks' bridges.
        if owner
            && self.may_write(WriteKind::Patches)
            && let Some(txn) = self.plan_patches(replica, &node)
        {
            self.write(client, events, WriteKind::Patches, &txn).await?;
        }

        // 4. weft-installed.
        // In cluster mode a new owner leaves the marks as they are until its own first
        // install is acknowledged (the previous owner's marks stay true meanwhile).
        let installs_known = !clustered || self.shared.ctx.channels.installed_reported(&node.id);
        if owner
            && installs_known
            && self.may_write(WriteKind::Installed)
            && let Some((txn, marked)) = self.plan_installed(replica, &node, &vifs)
        {
            let sent = std::time::Instant::now();
            if self
                .write(client, events, WriteKind::Installed, &txn)
                .await?
            {
                self.plugs_marked(&node.id, &marked, sent);
            }
        }
        Ok(())
    }

    /// VIFs, working tunnels and patch ports on the bridge; logs each port error once.
    fn read_bridge(
        &mut self,
        replica: &Replica,
        node: &NodeSettings,
        bridge: &Bridge,
    ) -> BridgeContents {
        let contents = bridge_contents(replica, &node.id, bridge);
        for (port, error) in &contents.tunnel_errors {
            if self.seen.tunnel_errors.get(port) != Some(error) {
                tracing::warn!(node = %node.id, port = %port, error = %error,
                    "Weft's tunnel or patch port failed in OVS");
            }
        }
        for port in self.seen.tunnel_errors.keys() {
            if !contents.tunnel_errors.contains_key(port) {
                tracing::info!(node = %node.id, port = %port, "tunnel port error cleared");
            }
        }
        self.seen.tunnel_errors = contents.tunnel_errors.clone();
        for id in contents
            .duplicate_iface_ids
            .difference(&self.seen.duplicates)
        {
            tracing::warn!(node = %node.id, iface_id = %id,
                "several interfaces carry this iface-id; using the first");
        }
        self.seen.duplicates = contents.duplicate_iface_ids.clone();
        contents
    }

    /// Publishes the node: the API's view of it first, then the topology (from which the
    /// compiler task decides the bindings and the port-status task shows them, on the
    /// node the API already knows).
    fn publish(
        &mut self,
        node: &NodeSettings,
        datapath_id: Option<u64>,
        contents: &BridgeContents,
    ) {
        let ctx = &self.shared.ctx;
        // VIFs that appeared while this session ran start a plug's trace (those found at
        // connect were plugged before: nothing to time).
        if let Some(before) = self.memo.published.as_ref().map(|p| &p.vifs) {
            for (iface_id, vif) in &contents.vifs {
                if before.get(iface_id).is_none_or(|b| b.ofport != vif.ofport) {
                    ctx.channels.plugs.seen(&node.id, vif.ofport);
                }
            }
        }
        ctx.observed.update_node(&node.id, |n: &mut TransportNode| {
            node.describe(n);
            n.datapath_id = datapath_id;
        });
        ctx.topology.report(NodeView {
            datapath_id,
            vifs: contents.vifs.clone(),
            tunnels: contents.tunnels.clone(),
            patches: contents.patches.clone(),
            ..node.bare_view()
        });
    }

    /// What a standby reports: the node as its root row describes it, with none of its
    /// ports ([`crate::topology::TransportNodes::report_identity`]). The owner's record
    /// supplies the rest to every instance.
    fn publish_identity(&mut self, node: &NodeSettings) {
        let ctx = &self.shared.ctx;
        ctx.observed
            .update_node(&node.id, |n: &mut TransportNode| node.describe(n));
        ctx.topology.report_identity(node.bare_view());
    }

    fn plan_tunnels(
        &mut self,
        replica: &Replica,
        node: &NodeSettings,
        bridge: &Bridge,
    ) -> Option<Transaction> {
        if !self.shared.ctx.channels.tunnels_published(&node.id) {
            // Not compiled yet: an empty placeholder would delete every tunnel.
            return None;
        }
        let desired = self.tunnels.as_ref()?.borrow().clone();
        if let Some((generation, tunnels)) = &self.memo.tunnels_clean
            && *generation == self.contents_generation
            && *tunnels == desired
        {
            return None;
        }
        let specs = match &self.memo.specs {
            Some((id, tunnels, specs)) if *id == node.id && *tunnels == desired => specs.clone(),
            _ => {
                let specs = Arc::new(ovs_tunnels(&node.id, &desired));
                self.memo.specs = Some((node.id.clone(), desired.clone(), specs.clone()));
                specs
            }
        };
        match vswitch::sync_tunnels(replica, bridge, KEY_REMOTE, &specs) {
            Ok(Some(txn)) => {
                tracing::info!(node = %node.id, tunnels = specs.len(), "syncing tunnel ports");
                Some(txn)
            }
            Ok(None) => {
                self.memo.tunnels_clean = Some((self.contents_generation, desired));
                None
            }
            Err(e) => {
                tracing::warn!(node = %node.id, error = %e, "cannot plan tunnel ports");
                None
            }
        }
    }

    /// Makes Weft's patch ports (on br-int and on the mapped bridges) the pairs the
    /// compiler asks for, for physnets this node maps to a bridge that exists; logs once
    /// why any other is left unpatched. Leftover pairs (a physnet no longer needed or
    /// remapped) are removed wherever they are.
    fn plan_patches(&mut self, replica: &Replica, node: &NodeSettings) -> Option<Transaction> {
        if !self.shared.ctx.channels.desired_published(&node.id) {
            // Not compiled yet: an empty placeholder would delete every patch port.
            return None;
        }
        let desired = self.patches.as_ref()?.borrow().clone();
        if let Some((generation, patches)) = &self.memo.patches_clean
            && *generation == self.contents_generation
            && *patches == desired
        {
            return None;
        }
        let mut want: BTreeMap<String, Vec<vswitch::PatchPort>> = BTreeMap::new();
        let mut unpatched: BTreeMap<String, String> = BTreeMap::new();
        for PatchSpec { physnet, bridge } in desired.iter() {
            let Some(bridge) = bridge else {
                unpatched.insert(
                    physnet.clone(),
                    format!(
                        "this hypervisor has ports on provider switches of physical network \
                         {physnet:?}, but external_ids:{KEY_BRIDGE_MAPPINGS} does not map it: \
                         they get local flows only and are not marked weft-installed"
                    ),
                );
                continue;
            };
            if !matches!(vswitch::cached_bridge_by_name(replica, bridge), Some(Ok(_))) {
                unpatched.insert(
                    physnet.clone(),
                    format!(
                        "physical network {physnet:?} is mapped to bridge {bridge:?}, which \
                         does not exist; Weft never creates it: its provider switches' ports \
                         here stay unbridged and are not marked weft-installed"
                    ),
                );
                continue;
            }
            let (int_name, ext_name) = patch_port_names(physnet);
            let ids = BTreeMap::from([(KEY_PHYSNET.to_owned(), physnet.clone())]);
            want.entry(node.bridge.clone())
                .or_default()
                .push(vswitch::PatchPort {
                    name: int_name.clone(),
                    peer: ext_name.clone(),
                    external_ids: ids.clone(),
                });
            want.entry(bridge.clone())
                .or_default()
                .push(vswitch::PatchPort {
                    name: ext_name,
                    peer: int_name,
                    external_ids: ids,
                });
        }
        for (physnet, why) in &unpatched {
            if self.seen.unpatched.get(physnet) != Some(why) {
                tracing::warn!(node = %node.id, physnet = %physnet, "{why}");
            }
        }
        for physnet in self.seen.unpatched.keys() {
            if !unpatched.contains_key(physnet) {
                tracing::info!(node = %node.id, physnet = %physnet,
                    "physical network no longer left unpatched");
            }
        }
        self.seen.unpatched = unpatched;
        match vswitch::sync_patch_ports(replica, KEY_PHYSNET, &want) {
            Ok(Some(txn)) => {
                tracing::info!(node = %node.id,
                    pairs = want.get(&node.bridge).map_or(0, Vec::len),
                    "syncing patch ports to physical networks");
                Some(txn)
            }
            Ok(None) => {
                self.memo.patches_clean = Some((self.contents_generation, desired));
                None
            }
            Err(e) => {
                tracing::warn!(node = %node.id, error = %e, "cannot plan patch ports");
                None
            }
        }
    }

    /// Sets `weft-installed=true` on the VIFs the port-status task names (by ofport),
    /// removes it from every other interface that has it.
    fn plan_installed(
        &mut self,
        replica: &Replica,
        node: &NodeSettings,
        vifs: &BTreeMap<String, Vif>,
    ) -> Option<(Transaction, Vec<u32>)> {
        let marks = self
            .marks
            .as_ref()
            .map(|rx| rx.borrow().clone())
            .unwrap_or_default();
        let key = (self.contents_generation, marks.clone());
        if self.memo.installed_clean.as_ref() == Some(&key) {
            return None;
        }
        let want: BTreeMap<Uuid, u32> = vifs
            .values()
            .filter(|v| marks.contains(&v.ofport))
            .map(|v| (v.interface, v.ofport))
            .collect();
        let mut newly = Vec::new();
        let mut txn = Transaction::new(vswitch::DATABASE);
        let (mut set, mut cleared) = (0, 0);
        for iface in vswitch::cached_rows::<Interface>(replica).flatten() {
            let has = iface.external_ids.get(KEY_INSTALLED).map(String::as_str) == Some("true");
            let marked = iface.external_ids.contains_key(KEY_INSTALLED);
            if let Some(ofport) = want.get(&iface.uuid) {
                if !has {
                    vswitch::set_interface_external_id(&mut txn, iface.uuid, KEY_INSTALLED, "true");
                    newly.push(*ofport);
                    set += 1;
                }
            } else if marked {
                vswitch::remove_interface_external_id(&mut txn, iface.uuid, KEY_INSTALLED);
                cleared += 1;
            }
        }
        if txn.operations.is_empty() {
            self.memo.installed_clean = Some(key);
            return None;
        }
        tracing::info!(node = %node.id, set, cleared, "updating weft-installed");
        Some((txn, newly))
    }

    /// `weft-installed`, sent at `sent`, was written on `ofports`: their plugs are
    /// complete; each one's hops are logged and recorded ([`crate::plug_trace`]).
    fn plugs_marked(&self, node: &str, ofports: &[u32], sent: std::time::Instant) {
        let ctx = &self.shared.ctx;
        for ofport in ofports {
            let Some(hops) = ctx.channels.plugs.marked(node, *ofport, sent) else {
                continue;
            };
            ctx.observed.metrics().plug_hops.observe(&hops);
            tracing::info!(
                node,
                port = %hops.port,
                ofport,
                total_ms = ms(hops.total()),
                compile_ms = ms(hops.compile),
                install_ms = ms(hops.install),
                queue_ms = ms(hops.queue),
                write_ms = ms(hops.write),
                "plug complete: weft-installed set"
            );
        }
    }
}

/// What a bridge holds, as the southbound reports it.
#[derive(Clone, Debug, Default, PartialEq)]
pub(super) struct BridgeContents {
    /// Interfaces with `external_ids:iface-id` and a valid ofport, by iface-id.
    pub(super) vifs: BTreeMap<String, Vif>,
    /// Weft's tunnel ports (`weft-remote`) with a valid ofport and no error: remote → ofport.
    pub(super) tunnels: BTreeMap<String, u32>,
    /// Weft's patch ports (`weft-physnet`) with a valid ofport and no error: physnet → ofport.
    pub(super) patches: BTreeMap<String, u32>,
    /// Weft's tunnel and patch ports OVS could not set up: port name → `Interface.error`.
    pub(super) tunnel_errors: BTreeMap<String, String>,
    /// iface-ids carried by more than one interface (the first one, in port order, wins).
    pub(super) duplicate_iface_ids: BTreeSet<String>,
}

pub(super) fn bridge_contents(replica: &Replica, node: &str, bridge: &Bridge) -> BridgeContents {
    let mut vifs = BTreeMap::new();
    let mut tunnels = BTreeMap::new();
    let mut patches = BTreeMap::new();
    let mut errors = BTreeMap::new();
    let mut duplicates = BTreeSet::new();
    for port_uuid in &bridge.ports {
        let port = match vswitch::cached_row::<vswitch::Port>(replica, port_uuid) {
            Some(Ok(p)) => p,
            Some(Err(e)) => {
                tracing::debug!(node = %node, error = %e, "unreadable port row");
                continue;
            }
            None => continue,
        };
        // A Weft-owned port: a tunnel (by remote) or a patch port (by physnet).
        let mut owned = match (
            port.external_ids.get(KEY_REMOTE),
            port.external_ids.get(KEY_PHYSNET),
        ) {
            (Some(remote), _) => Some((&mut tunnels, remote.clone())),
            (None, Some(physnet)) => Some((&mut patches, physnet.clone())),
            (None, None) => None,
        };
        for iface_uuid in &port.interfaces {
            let iface = match vswitch::cached_row::<Interface>(replica, iface_uuid) {
                Some(Ok(i)) => i,
                Some(Err(e)) => {
                    tracing::debug!(node = %node, error = %e, "unreadable interface row");
                    continue;
                }
                None => continue,
            };
            let ofport = iface
                .ofport
                .filter(|p| *p > 0)
                .and_then(|p| u32::try_from(p).ok());
            if let Some((found, key)) = &mut owned {
                let error = iface.error.clone().filter(|e| !e.is_empty());
                match (ofport, error) {
                    (Some(of), None) => {
                        found.insert(key.clone(), of);
                    }
                    (_, Some(e)) => {
                        errors.insert(port.name.clone(), e);
                    }
                    (None, None) if iface.ofport == Some(-1) => {
                        errors.insert(port.name.clone(), "ofport -1".into());
                    }
                    (None, None) => {}
                }
                continue;
            }
            let (Some(iface_id), Some(ofport)) = (iface.iface_id(), ofport) else {
                continue;
            };
            if vifs.contains_key(iface_id) {
                duplicates.insert(iface_id.to_owned());
                continue;
            }
            vifs.insert(
                iface_id.to_owned(),
                Vif {
                    ofport,
                    interface: iface.uuid,
                    name: iface.name.clone(),
                },
            );
        }
    }
    BridgeContents {
        vifs,
        tunnels,
        patches,
        tunnel_errors: errors,
        duplicate_iface_ids: duplicates,
    }
}

/// The OVS tunnel ports for `node`'s desired tunnels, in order, without a tunnel to
/// itself; a remote whose port name collides with an earlier one's is left out (logged).
pub(super) fn ovs_tunnels(node: &str, tunnels: &BTreeSet<TunnelSpec>) -> Vec<vswitch::TunnelPort> {
    let mut specs: Vec<vswitch::TunnelPort> = Vec::with_capacity(tunnels.len());
    let mut names: HashMap<String, usize> = HashMap::with_capacity(tunnels.len());
    for t in tunnels {
        if t.remote == node {
            continue;
        }
        let spec = ovs_tunnel(t);
        if let Some(other) = names.get(&spec.name).and_then(|i| specs.get(*i)) {
            tracing::error!(node = %node, port = %spec.name, remote = %t.remote,
                other = ?other.external_ids.get(KEY_REMOTE),
                "tunnel port name collision; skipping this remote");
            continue;
        }
        names.insert(spec.name.clone(), specs.len());
        specs.push(spec);
    }
    specs
}

/// The OVS tunnel port for one desired tunnel.
/// A tunnel to an external VTEP is named `wv-…` and also tagged `weft-vtep=<ip>`, so an
/// operator (and the hardware-VTEP side) can tell it from the hypervisor mesh.
pub(super) fn ovs_tunnel(t: &TunnelSpec) -> vswitch::TunnelPort {
    let mut external_ids = BTreeMap::from([(KEY_REMOTE.to_owned(), t.remote.clone())]);
    let name = match t.vtep_ip() {
        Some(ip) => {
            external_ids.insert(KEY_VTEP.to_owned(), ip.to_string());
            vtep_port_name(ip)
        }
        None => tunnel_port_name(&t.remote),
    };
    vswitch::TunnelPort {
        name,
        kind: encap_name(t.encap).into(),
        remote_ip: t.remote_ip.to_string(),
        local_ip: Some(t.local_ip.to_string()),
        key: "flow".into(),
        external_ids,
    }
}

/// Milliseconds with a tenth, for the plug trace's log line.
fn ms(d: std::time::Duration) -> f64 {
    (d.as_secs_f64() * 10_000.0).round() / 10.0
}

impl Session {
    /// Follows this instance's Controller row on `bridge` and, when [`super::redial`]
    /// says so, rewrites its target in the other spelling.
    async fn redial_if_due(
        &mut self,
        client: &Client,
        events: &mut mpsc::Receiver<Event>,
        replica: &Replica,
        node: &NodeSettings,
        bridge: &Bridge,
    ) -> Result<(), SessionEnd> {
        let Some(target) = self.shared.cfg.controller_target() else {
            return Ok(());
        };
        let row = bridge
            .controller
            .iter()
            .filter_map(|u| vswitch::cached_row::<vswitch::Controller>(replica, u)?.ok())
            .find(|c| vswitch::same_endpoint(&c.target, &target, vswitch::DEFAULT_CONTROLLER_PORT));
        let now = std::time::Instant::now();
        self.redial
            .observe(row.as_ref().map(|c| c.is_connected), now);
        let channels = &self.shared.ctx.channels;
        let Some(row) = row else {
            return Ok(());
        };
        if !self
            .redial
            .due(now, |since| channels.switch_arrived_since(&node.id, since))
            || !self.may_write(WriteKind::Redial)
        {
            return Ok(());
        }
        let Some((txn, other)) = super::redial::plan(&row) else {
            return Ok(());
        };
        tracing::info!(node = %node.id, from = %row.target, to = %other,
            "the switch reports weftd unreachable and has not reached it since: \
             rewriting its controller target in another spelling so that it dials at once");
        self.write(client, events, WriteKind::Redial, &txn).await?;
        Ok(())
    }
}
