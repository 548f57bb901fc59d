//! Assembles a running weftd: store → controller → API server, and tears it down in the
//! reverse order (stop accepting, let queued writes finish, close the store).

use std::net::SocketAddr;
use std::sync::Arc;

use jsonrpsee::server::ServerHandle;

use crate::api::{ApiContext, ApiSettings, Tracer};
use crate::config::Config;
use crate::controller::{Controller, WriterHandle};
use crate::store::RedbStore;

/// A running daemon (also used in-process by tests and benchmarks).
pub struct Daemon {
    pub api_addr: SocketAddr,
    pub controller: Controller,
    server: ServerHandle,
    writer: WriterHandle,
}

impl Daemon {
    /// Opens the store (refusing corrupt data), loads the model and starts the API.
    pub async fn start(cfg: &Config) -> anyhow::Result<Daemon> {
        Self::start_with(cfg, None).await
    }

    /// Like [`Daemon::start`], with a `trace` implementation (the pipeline compiler's).
    pub async fn start_with(
        cfg: &Config,
        tracer: Option<Arc<dyn Tracer>>,
    ) -> anyhow::Result<Daemon> {
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
        let (controller, writer) = Controller::start(Box::new(store))?;
        let m = controller.snapshot();
        tracing::info!(
            store = controller.store_location(),
            revision = m.revision(),
            switches = m.switch_count(),
            ports = m.port_count(),
            acls = m.acl_count(),
            "store loaded"
        );
        let settings = ApiSettings {
            listen: cfg.api_listen,
            token: cfg.api_token.clone(),
            max_connections: cfg.max_connections,
        };
        let (api_addr, server) = match crate::api::serve(&settings, {
            let ctx = ApiContext::new(controller.clone());
            match tracer {
                Some(t) => ctx.with_tracer(t),
                None => ctx,
            }
        })
        .await
        {
            Ok(ok) => ok,
            Err(e) => {
                writer.shutdown().await;
                return Err(e);
            }
        };
        tracing::info!(%api_addr, auth = cfg.api_token.is_some(), "API listening");
        // The southbound (OVSDB/OpenFlow listeners on cfg.openflow_listen and
        // cfg.ovsdb_listen, active cfg.ovsdb targets) starts here once it exists; it gets
        // `controller.clone()`.
        Ok(Daemon {
            api_addr,
            controller,
            server,
            writer,
        })
    }

    /// Stops accepting API requests, waits for in-flight ones, lets every queued write
    /// commit, then closes the store.
    pub async fn shutdown(self) {
        let _ = self.server.stop();
        self.server.stopped().await;
        drop(self.controller);
        self.writer.shutdown().await;
    }
}
