//! Assembles a running weftd: store → model writer → realization (compiler task) →
//! southbound (OVSDB manager and OpenFlow listeners) → API server, and tears it down in
//! the reverse order: southbound sessions end first (switches keep their flows: fail_mode
//! secure), then the API stops accepting, queued writes finish and the store closes.

use std::net::SocketAddr;
use std::sync::Arc;

use jsonrpsee::server::ServerHandle;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::api::{ApiContext, ApiSettings};
use crate::channels::Channels;
use crate::cluster::Ownership;
use crate::config::Config;
use crate::northbound::{ModelWriter, WriterHandle};
use crate::southbound::openflow::OpenFlowServer;
use crate::southbound::ovsdb::{OvsdbContext, OvsdbServer, OvsdbSouthbound};
use crate::store::{RedbStore, Store};
use crate::topology::TransportNodes;

/// A running daemon (also used in-process by tests and benchmarks).
pub struct Daemon {
    pub api_addr: SocketAddr,
    /// Where the OVSDB manager listener is bound (hypervisors' `set-manager`).
    pub ovsdb_addr: Option<SocketAddr>,
    /// Where the OpenFlow listener is bound (br-int's controller).
    pub openflow_addr: SocketAddr,
    pub controller: ModelWriter,
    pub nodes: Arc<TransportNodes>,
    pub channels: Arc<Channels>,
    /// Which hypervisors this instance owns (all of them without `--etcd`).
    pub ownership: Ownership,
    /// Cluster mode's lease and ownership tasks.
    cluster: Option<ClusterTasks>,
    server: ServerHandle,
    writer: WriterHandle,
    southbound_stop: CancellationToken,
    /// Stops the port-status task, after the southbound sessions ended (their last
    /// reports, the nodes they leave held, are then shown).
    status_stop: CancellationToken,
    ovsdb: OvsdbServer,
    openflow: OpenFlowServer,
    realize: JoinHandle<()>,
    port_status: JoinHandle<()>,
}

impl Daemon {
    /// Opens the store (refusing corrupt data), loads the model and starts the API.
    pub async fn start(cfg: &Config) -> anyhow::Result<Daemon> {
        crate::compiler::set_learn_idle_timeout(cfg.vtep_learn_idle_timeout);
        // Certificates first: a bad file must stop weftd before anything starts.
        let tls = match &cfg.tls {
            Some(files) => Some(crate::tls::SouthboundTls::load(files)?),
            None => None,
        };
        let api_tls = match &cfg.api_tls {
            Some(f) => Some(crate::tls::api_server_config(
                &f.certificate,
                &f.private_key,
            )?),
            None => None,
        };
        let store = open_store(cfg).await?;
        let (controller, writer) = ModelWriter::start(store)?;
        let m = controller.snapshot();
        tracing::info!(
            instance = %cfg.instance,
            store = controller.store_location(),
            revision = m.revision(),
            switches = m.switch_count(),
            ports = m.port_count(),
            acls = m.acl_count(),
            "store loaded"
        );
        let nodes = TransportNodes::new();
        let channels = Channels::new();
        let (cluster_view, ownership) = ownership_for(cfg);
        // What the OVSDB sessions report. Alone, that is the topology everyone reads; in
        // cluster mode everyone else reads `nodes`, merged from it and the owners' etcd
        // records (`cluster::etcd::shared_nodes`).
        let local_nodes = if cluster_view.is_some() {
            TransportNodes::new()
        } else {
            nodes.clone()
        };
        let southbound_stop = CancellationToken::new();
        let status_stop = CancellationToken::new();
        let realize = tokio::spawn(crate::realize::run_owned(
            crate::realize::Inputs {
                model: controller.watch_model(),
                nodes: nodes.clone(),
                sessions: local_nodes.clone(),
                vteps: controller.observed().vteps().watch(),
            },
            channels.clone(),
            southbound_stop.clone(),
            cfg.startup_hold,
            controller.metrics().clone(),
            ownership.clone(),
        ));
        let port_status = tokio::spawn(crate::port_status::run(
            nodes.clone(),
            channels.clone(),
            controller.observed().clone(),
            status_stop.clone(),
        ));
        let southbound = async {
            let openflow = crate::southbound::openflow::serve_with_tls(
                cfg.openflow_listen,
                crate::southbound::openflow::OpenFlowContext {
                    topology: nodes.clone(),
                    channels: channels.clone(),
                    observed: controller.observed().clone(),
                    ownership: ownership.clone(),
                },
                southbound_stop.clone(),
                Default::default(),
                tls.clone().filter(|_| cfg.openflow_ssl),
            )
            .await
            .map_err(|e| anyhow::anyhow!("OpenFlow listener {}: {e}", cfg.openflow_listen))?;
            let ovsdb = crate::southbound::ovsdb::serve(
                OvsdbSouthbound::from_config(cfg, tls.clone()),
                OvsdbContext {
                    topology: local_nodes.clone(),
                    channels: channels.clone(),
                    observed: controller.observed().clone(),
                    ownership: ownership.clone(),
                    model: Some(controller.watch_model()),
                },
                southbound_stop.clone(),
            )
            .await
            .map_err(|e| anyhow::anyhow!("OVSDB manager listener {}: {e}", cfg.ovsdb_listen))?;
            anyhow::Ok((openflow, ovsdb))
        };
        let (openflow, ovsdb) = match southbound.await {
            Ok(ok) => ok,
            Err(e) => {
                southbound_stop.cancel();
                status_stop.cancel();
                writer.shutdown().await;
                return Err(e);
            }
        };
        tracing::info!(
            ovsdb = ?ovsdb.local_addr(),
            openflow = %openflow.local_addr,
            advertise = ?cfg.openflow_advertise,
            openflow_tls = cfg.openflow_ssl,
            ovsdb_tls = cfg.ovsdb_ssl,
            "southbound listening"
        );
        let settings = ApiSettings {
            listen: cfg.api_listen,
            token: cfg.api_token.clone(),
            max_connections: cfg.max_connections,
            tls: api_tls,
        };
        let (api_addr, server) = match crate::api::serve(
            &settings,
            ApiContext::new(controller.clone(), nodes.clone())
                .with_openflow_stats(openflow.stats.clone())
                .with_ownership(ownership.clone()),
        )
        .await
        {
            Ok(ok) => ok,
            Err(e) => {
                southbound_stop.cancel();
                status_stop.cancel();
                writer.shutdown().await;
                return Err(e);
            }
        };
        tracing::info!(%api_addr, auth = cfg.api_token.is_some(), https = cfg.api_tls.is_some(), "API listening");
        let info = instance_info(cfg, api_addr, ovsdb.local_addr());
        ownership.set_info(info.clone());
        tokio::spawn(crate::cluster::events::announce(
            ownership.clone(),
            controller.observed().clone(),
            status_stop.clone(),
        ));
        let cluster = match cluster_view {
            None => None,
            Some(view) => match start_cluster(cfg, info, local_nodes, nodes.clone(), view).await {
                Ok(c) => Some(c),
                Err(e) => {
                    southbound_stop.cancel();
                    status_stop.cancel();
                    let _ = server.stop();
                    writer.shutdown().await;
                    return Err(e);
                }
            },
        };
        Ok(Daemon {
            ownership,
            cluster,
            api_addr,
            ovsdb_addr: ovsdb.local_addr(),
            openflow_addr: openflow.local_addr,
            controller,
            nodes,
            channels,
            server,
            writer,
            southbound_stop,
            status_stop,
            ovsdb,
            openflow,
            realize,
            port_status,
        })
    }

    /// Stops accepting API requests, waits for in-flight ones, lets every queued write
    /// commit, then closes the store.
    pub async fn shutdown(self) {
        // The lease first: revoking it hands this instance's hypervisors to the others
        // at once (their flows stay: fail_mode secure), rather than after the lease.
        if let Some(c) = self.cluster {
            shutdown_cluster(c).await;
        }
        self.southbound_stop.cancel();
        self.openflow.join().await;
        self.ovsdb.join().await;
        let _ = self.realize.await;
        self.status_stop.cancel();
        let _ = self.port_status.await;
        let _ = self.server.stop();
        self.server.stopped().await;
        drop(self.controller);
        self.writer.shutdown().await;
    }
}

/// The OpenFlow target written into br-int's Controller rows, in the listener's scheme.
/// What this instance announces about itself to the cluster.
fn instance_info(
    cfg: &Config,
    api_addr: SocketAddr,
    ovsdb: Option<SocketAddr>,
) -> crate::cluster::InstanceInfo {
    crate::cluster::InstanceInfo {
        api: api_addr.to_string(),
        openflow_advertise: advertised_target(cfg),
        ovsdb_manager: ovsdb.and_then(|bound| manager_address(cfg, bound)),
    }
}

/// The address hypervisors dial for this instance's OVSDB listener (`bound`): the
/// listener's own when it is bound to one IP, else the advertised OpenFlow IP on the
/// listener's port (the host the hypervisors reach); unknown without either. Only ever
/// compared with Manager targets, so a wrong guess changes nothing.
fn manager_address(cfg: &Config, bound: SocketAddr) -> Option<SocketAddr> {
    if !bound.ip().is_unspecified() {
        return Some(bound);
    }
    cfg.openflow_advertise
        .map(|a| SocketAddr::new(a.ip(), bound.port()))
}

fn advertised_target(cfg: &Config) -> Option<String> {
    let scheme = if cfg.openflow_ssl { "ssl" } else { "tcp" };
    cfg.openflow_advertise.map(|a| format!("{scheme}:{a}"))
}

/// The embedded store in `data_dir`, or in cluster mode the etcd store.
async fn open_store(cfg: &Config) -> anyhow::Result<Box<dyn Store>> {
    if let Some(etcd) = &cfg.etcd {
        return open_etcd(etcd, &cfg.instance).await;
    }
    let data_dir = cfg.data_dir.clone();
    // redb may panic on some kinds of damage; that too must stop weftd with a message.
    let store = tokio::task::spawn_blocking(move || RedbStore::open(&data_dir))
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "store in {} could not be opened ({e}); the file is probably damaged",
                cfg.data_dir.display()
            )
        })??;
    Ok(Box::new(store))
}

#[cfg(feature = "etcd")]
async fn open_etcd(
    etcd: &crate::config::EtcdConfig,
    instance: &str,
) -> anyhow::Result<Box<dyn Store>> {
    use crate::store::{EtcdSettings, EtcdStore};
    let settings = EtcdSettings::new(etcd.endpoints.clone(), &etcd.prefix, instance);
    Ok(Box::new(EtcdStore::connect(settings).await?))
}

#[cfg(not(feature = "etcd"))]
async fn open_etcd(_: &crate::config::EtcdConfig, _: &str) -> anyhow::Result<Box<dyn Store>> {
    anyhow::bail!(
        "--etcd: this weftd was built without cluster mode (cargo feature `etcd`); rebuild with default features"
    )
}

#[cfg(feature = "etcd")]
type ClusterTasks = crate::cluster::etcd::Cluster;
#[cfg(not(feature = "etcd"))]
type ClusterTasks = std::convert::Infallible;
#[cfg(feature = "etcd")]
type ClusterView = crate::cluster::bells::ViewSender;
#[cfg(not(feature = "etcd"))]
type ClusterView = std::convert::Infallible;

/// Without `--etcd` this instance owns everything; in cluster mode nothing until its
/// lease and claims are up (the view's sender goes to [`start_cluster`]).
fn ownership_for(cfg: &Config) -> (Option<ClusterView>, Ownership) {
    #[cfg(feature = "etcd")]
    if cfg.etcd.is_some() {
        let (tx, ownership) = crate::cluster::etcd::channel(&cfg.instance);
        return (Some(tx), ownership);
    }
    (None, Ownership::single(&cfg.instance))
}

#[cfg(feature = "etcd")]
async fn start_cluster(
    cfg: &Config,
    info: crate::cluster::InstanceInfo,
    local: Arc<TransportNodes>,
    shared: Arc<TransportNodes>,
    view: ClusterView,
) -> anyhow::Result<ClusterTasks> {
    use crate::cluster::etcd::{Cluster, ClusterSettings};
    use crate::store::EtcdSettings;
    let Some(etcd) = &cfg.etcd else {
        anyhow::bail!("cluster mode without --etcd");
    };
    let settings = ClusterSettings {
        etcd: EtcdSettings::new(etcd.endpoints.clone(), &etcd.prefix, &cfg.instance),
        instance: cfg.instance.clone(),
        info,
        owner_lease: cfg.owner_lease,
    };
    tracing::info!(instance = %cfg.instance, lease = ?cfg.owner_lease, "joining the cluster");
    Cluster::start(settings, local, shared, view).await
}

#[cfg(not(feature = "etcd"))]
async fn start_cluster(
    _: &Config,
    _: crate::cluster::InstanceInfo,
    _: Arc<TransportNodes>,
    _: Arc<TransportNodes>,
    view: ClusterView,
) -> anyhow::Result<ClusterTasks> {
    match view {}
}

#[cfg(feature = "etcd")]
async fn shutdown_cluster(c: ClusterTasks) {
    c.shutdown().await;
}

#[cfg(not(feature = "etcd"))]
async fn shutdown_cluster(c: ClusterTasks) {
    match c {}
}
