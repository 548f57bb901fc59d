//! weftd's command line, shared with `weft-docs`, which renders its man page from it at
//! package build time.

use clap::Parser;

use weft::config::Flags;

#[derive(Parser, Debug)]
#[command(
    name = "weftd",
    version,
    about = "Weft network-virtualization controller",
    long_about = "Weft network-virtualization controller.\n\nKeeps the logical network \
        (switches, ports, ACLs, routers) in its store, serves the JSON-RPC API (and GET \
        /metrics) on --api-listen, accepts hypervisors' OVSDB and OpenFlow connections, and \
        programs their Open vSwitch. Flags override the TOML file given with --config."
)]
pub struct Cli {
    #[command(flatten)]
    pub flags: Flags,
}
