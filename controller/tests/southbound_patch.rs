//! The OVSDB southbound's patch ports to physical networks against a real ovsdb-server and
//! ovs-vswitchd (dummy datapath): what it reads from `weft-bridge-mappings`, the patch
//! pairs it creates for the desired physnets, the ofports it reports, what it refuses to
//! create (a missing mapped bridge) and what it removes. Every assertion reads the
//! database with `ovs-vsctl`, independently of the code under test.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use integration::sandbox::{Datapath, OvsSandbox};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use weft::channels::Channels;
use weft::desired::{DesiredNode, PatchSpec};
use weft::observed::ObservedState;
use weft::southbound::ovsdb::{OvsdbContext, OvsdbSouthbound, patch_port_names, serve};
use weft::topology::TransportNodes;

fn vsctl(ovs: &OvsSandbox, args: &[&str]) -> String {
    ovs.vsctl(args)
        .unwrap_or_else(|e| panic!("{e}\n{}", ovs.log_tail(30)))
}

fn ports(ovs: &OvsSandbox, bridge: &str) -> BTreeSet<String> {
    vsctl(ovs, &["list-ports", bridge])
        .lines()
        .map(str::to_owned)
        .collect()
}

async fn eventually(what: &str, ovs: &OvsSandbox, mut check: impl FnMut() -> bool) {
    for _ in 0..600 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("never happened: {what}\n{}", ovs.log_tail(30));
}

fn desired(patches: &[(&str, Option<&str>)]) -> Arc<DesiredNode> {
    Arc::new(DesiredNode {
        patches: patches
            .iter()
            .map(|(physnet, bridge)| PatchSpec {
                physnet: physnet.to_string(),
                bridge: bridge.map(str::to_owned),
            })
            .collect(),
        ..Default::default()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn southbound_patch_ports_follow_the_desired_physnets() {
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_max_level(tracing::Level::INFO)
        .try_init();
    let (events, _) = broadcast::channel(16);
    let topology = TransportNodes::new();
    let channels = Channels::new();
    let ctx = OvsdbContext {
        topology: topology.clone(),
        channels: channels.clone(),
        observed: Arc::new(ObservedState::new(events)),
        ownership: weft::cluster::Ownership::single("test"),
        model: None,
    };
    let shutdown = CancellationToken::new();
    let cfg = OvsdbSouthbound {
        listen: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
        ..Default::default()
    };
    let server = serve(cfg, ctx, shutdown.clone()).await.expect("serve");
    let addr = server.local_addr().expect("listener address");

    let ovs = OvsSandbox::builder("sbpatch")
        .remote("db:Open_vSwitch,Open_vSwitch,manager_options")
        .vswitchd(Datapath::Dummy)
        .start()
        .unwrap_or_else(|e| panic!("{e}"));
    // The operator's bridge for physnet1, with an uplink Weft must leave alone; physnet2
    // is mapped to a bridge that does not exist; one entry is malformed.
    vsctl(
        &ovs,
        &[
            "add-br",
            "br-int",
            "--",
            "set",
            "bridge",
            "br-int",
            "datapath_type=dummy",
        ],
    );
    vsctl(
        &ovs,
        &[
            "add-br",
            "br-ex",
            "--",
            "set",
            "bridge",
            "br-ex",
            "datapath_type=dummy",
        ],
    );
    vsctl(
        &ovs,
        &[
            "add-port",
            "br-ex",
            "eth1",
            "--",
            "set",
            "interface",
            "eth1",
            "type=dummy",
        ],
    );
    vsctl(
        &ovs,
        &[
            "set",
            "Open_vSwitch",
            ".",
            "external_ids:system-id=hv1",
            "external_ids:weft-encap-ip=192.0.2.1",
            "external_ids:weft-bridge-mappings=physnet1:br-ex,physnet2:br-missing,junk",
        ],
    );
    vsctl(&ovs, &["set-manager", &format!("tcp:{addr}")]);

    // The node view shows the well-formed mappings.
    eventually("bridge mappings reported", &ovs, || {
        topology
            .snapshot()
            .nodes
            .get("hv1")
            .map(|v| v.bridge_mappings.clone())
            == Some(BTreeMap::from([
                ("physnet1".to_owned(), "br-ex".to_owned()),
                ("physnet2".to_owned(), "br-missing".to_owned()),
            ]))
    })
    .await;

    let (int1, ext1) = patch_port_names("physnet1");
    let (int2, ext2) = patch_port_names("physnet2");
    channels.publish_desired(
        "hv1",
        desired(&[
            ("physnet1", Some("br-ex")),
            ("physnet2", Some("br-missing")),
            ("physnet3", None),
        ]),
    );
    eventually("physnet1's patch pair created", &ovs, || {
        ports(&ovs, "br-int").contains(&int1) && ports(&ovs, "br-ex").contains(&ext1)
    })
    .await;
    let get = |table: &str, rec: &str, col: &str| {
        vsctl(&ovs, &["get", table, rec, col])
            .trim()
            .trim_matches('"')
            .to_owned()
    };
    assert_eq!(get("interface", &int1, "type"), "patch");
    assert_eq!(get("interface", &int1, "options:peer"), ext1);
    assert_eq!(get("interface", &ext1, "options:peer"), int1);
    for p in [&int1, &ext1] {
        assert_eq!(get("port", p, "external_ids:weft-physnet"), "physnet1");
    }
    // The br-int end's ofport is reported, like a tunnel's.
    eventually("patch ofport reported", &ovs, || {
        topology
            .snapshot()
            .nodes
            .get("hv1")
            .and_then(|v| v.patches.get("physnet1").copied())
            .is_some_and(|p| p > 0)
    })
    .await;
    // The missing bridge is not created, and nothing was made for physnet2 or physnet3;
    // the operator's uplink is untouched.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let bridges = vsctl(&ovs, &["list-br"]);
    assert_eq!(bridges.lines().collect::<Vec<_>>(), ["br-ex", "br-int"]);
    assert!(!ports(&ovs, "br-int").contains(&int2));
    assert!(!vsctl(&ovs, &["list", "interface"]).contains(&ext2));
    assert_eq!(
        ports(&ovs, "br-ex"),
        BTreeSet::from(["eth1".to_owned(), ext1.clone()])
    );
    assert_eq!(
        topology.snapshot().nodes["hv1"]
            .patches
            .keys()
            .collect::<Vec<_>>(),
        ["physnet1"]
    );

    // No provider switch left here: the pair goes, the operator's bridge stays as it was.
    channels.publish_desired("hv1", desired(&[]));
    eventually("patch pair removed", &ovs, || {
        !ports(&ovs, "br-int").contains(&int1) && !ports(&ovs, "br-ex").contains(&ext1)
    })
    .await;
    assert_eq!(ports(&ovs, "br-ex"), BTreeSet::from(["eth1".to_owned()]));
    eventually("patch ofport no longer reported", &ovs, || {
        topology.snapshot().nodes["hv1"].patches.is_empty()
    })
    .await;

    shutdown.cancel();
    server.join().await;
}
