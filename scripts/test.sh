#!/usr/bin/env bash
# Runs every Weft test on a fresh Debian machine: installs what the tests need (Open vSwitch,
# Mininet, packet tools, protoc and etcd for cluster mode, Prometheus and promtool for the
# metrics tests, headless Chromium and chromedriver for the web view's test, os-ken's
# OpenFlow test vectors),
# then format, lint and test.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
# openvswitch-common holds ovs-pki; the TLS tests also call openssl directly. openvswitch-vtep
# holds the hardware_vtep schema and ovs-vtep (the hardware VTEP tests).
for pkg in openvswitch-switch openvswitch-common openvswitch-vtep openssl mininet iperf3 netcat-openbsd ethtool docker-compose \
           iproute2 iputils-ping iputils-arping tcpdump socat nftables python3-pip \
           protobuf-compiler libprotobuf-dev etcd-server prometheus chromium chromium-driver; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need_apt+=("$pkg")
done
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "== installing: ${need_apt[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_apt[@]}"
fi
# The packaged services would start a system-wide OVS, etcd and Prometheus; tests run their
# own private instances (cluster mode's tests start a 3-member etcd cluster on loopback, the
# metrics test a Prometheus on a free loopback port).
if command -v systemctl >/dev/null 2>&1; then
  systemctl stop openvswitch-switch >/dev/null 2>&1 || true
  systemctl stop etcd >/dev/null 2>&1 || true
  systemctl stop prometheus >/dev/null 2>&1 || true
fi

rustup component add rustfmt clippy >/dev/null 2>&1 || true

# os-ken's OpenFlow 1.3 test vectors: an independent implementation's captures.
vectors=target/testdata/os-ken
if [ ! -d "$vectors/of13" ]; then
  echo "== fetching os-ken test vectors"
  tmp=$(mktemp -d)
  python3 -m pip download --quiet --no-deps --dest "$tmp" os-ken
  mkdir -p "$vectors"
  python3 - "$tmp" "$vectors" <<'PY'
import glob, sys, zipfile, os
wheel = glob.glob(os.path.join(sys.argv[1], "os_ken-*.whl"))[0]
prefix = "os_ken/tests/packet_data/of13/"
with zipfile.ZipFile(wheel) as z:
    for name in z.namelist():
        if name.startswith(prefix) and not name.endswith("/"):
            dest = os.path.join(sys.argv[2], "of13", name[len(prefix):])
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            with open(dest, "wb") as f:
                f.write(z.read(name))
PY
  rm -rf "$tmp"
fi
export WEFT_OSKEN_VECTORS="$PWD/$vectors/of13"

# A one-shot run gains nothing from incremental caches, which would take another 2.5 GB of a
# CI machine's disk beside the 3 GB the test binaries need.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings
echo "== cargo test"
cargo test --workspace
