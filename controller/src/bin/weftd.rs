//! weftd: the Weft controller daemon. All logic lives in the `weft` library; this file
//! parses flags, sets up logging and signals, and runs [`weft::daemon::Daemon`].

use clap::Parser;
use tracing_subscriber::EnvFilter;

use weft::config::Config;
use weft::daemon::Daemon;

#[path = "weftd/cli.rs"]
mod cli;

use cli::Cli;

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    weft::memory::no_transparent_huge_pages("weftd");
    let cli = Cli::parse();
    let config = match Config::from_flags(cli.flags) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("weftd: configuration error: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let filter = match &config.log {
        Some(f) => EnvFilter::try_new(f),
        None => EnvFilter::try_from_default_env().or_else(|_| EnvFilter::try_new("info")),
    };
    let filter = match filter {
        Ok(f) => f,
        Err(e) => {
            eprintln!("weftd: bad log filter: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("weftd: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(config)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("weftd: error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(config: Config) -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    // Install handlers before announcing readiness, so a supervisor's early SIGTERM is
    // handled gracefully.
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let daemon = Daemon::start(&config).await?;
    // A machine-readable readiness line for scripts and tests (port 0 picks a free port).
    println!("weftd: api listening on {}", daemon.api_addr);
    // The API and southbound listeners are bound: a Type=notify unit is now started.
    match weft::service::notify_ready() {
        Ok(true) => tracing::info!("told the service manager weftd is ready"),
        Ok(false) => {}
        Err(e) => tracing::warn!(error = %e, "could not tell the service manager weftd is ready"),
    }
    let sig = tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    };
    tracing::info!(signal = sig, "shutting down");
    daemon.shutdown().await;
    tracing::info!("stopped");
    Ok(())
}
