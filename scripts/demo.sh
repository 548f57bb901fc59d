#!/usr/bin/env bash
# One-command Weft demo: build, start weftd and a namespace lab (weft-lab: 2 hypervisors,
# each its own Open vSwitch, 2 VMs each), create two tenants whose addresses overlap and an
# ACL, show the pings that work and the ones that must not, tear everything down (also on
# Ctrl-C or failure). Needs root and Open vSwitch (scripts/test.sh installs it).
#
#   scripts/demo.sh            # exit status 0 when every expectation held
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" -eq 0 ] || exec sudo -E "$0" "$@"
t0=$(date +%s.%N)
elapsed() { awk -v now="$(date +%s.%N)" -v t0="$t0" 'BEGIN { printf "%.1f", now - t0 }'; }
say() { printf '\n== [%5ss] %s\n' "$(elapsed)" "$*"; }

say "building weftd, weftctl, weft-lab (release)"
cargo build --release -q --bin weftd --bin weftctl --bin weft-lab
bin="${CARGO_TARGET_DIR:-$PWD/target}/release"

work=$(mktemp -d /tmp/weft-demo.XXXXXX)
lab_id="" weftd_pid=""
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  say "tearing down"
  [ -z "$weftd_pid" ] || { kill "$weftd_pid" 2>/dev/null || true; wait "$weftd_pid" 2>/dev/null || true; }
  [ -z "$lab_id" ] || "$bin/weft-lab" down --id "$lab_id" || true
  rm -rf "$work"
  say "done, exit $rc"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

say "namespace lab: 2 hypervisors x 2 VMs, managers pointed at weftd"
"$bin/weft-lab" up --hypervisors 2 --vms-per-hv 2 --manager tcp:CONTROLLER:6640 | tee "$work/lab.txt"
lab_id=$(awk '/^lab .* up in/ {print $2; exit}' "$work/lab.txt")
ctl=$(awk -F': ' '/^controller address/ {print $2; exit}' "$work/lab.txt")
[ -n "$lab_id" ] && [ -n "$ctl" ] || { echo "could not read weft-lab's output" >&2; exit 1; }
ns() { awk -v vm="$1" '$1 == "vm" && $2 == vm {print $4; exit}' "$work/lab.txt"; }

say "weftd: southbound on $ctl, API on loopback"
"$bin/weftd" --data-dir "$work/data" --api-listen 127.0.0.1:0 \
  --ovsdb-listen "tcp:$ctl:6640" --openflow-listen "tcp:$ctl:6653" \
  --openflow-advertise "tcp:$ctl:6653" --log warn >"$work/weftd.out" 2>"$work/weftd.log" &
weftd_pid=$!
for _ in $(seq 100); do
  api=$(sed -n 's/^weftd: api listening on //p' "$work/weftd.out")
  [ -n "$api" ] && break
  kill -0 "$weftd_pid" 2>/dev/null || { cat "$work/weftd.log" >&2; exit 1; }
  sleep 0.1
done
[ -n "$api" ] || { echo "weftd did not start" >&2; exit 1; }
weftctl() { "$bin/weftctl" --server "http://$api" "$@"; }

# Two tenants, same addresses: blue = the vm1s, red = the vm2s. 10.0.0.3 exists only in red.
# weft-lab gave the VMs 192.168.N.M/16; readdress them to what the tenants use.
readdress() { ip -n "$(ns "$1")" addr flush dev eth0; ip -n "$(ns "$1")" addr add "$2/24" dev eth0; }
readdress hv1-vm1 10.0.0.1; readdress hv2-vm1 10.0.0.2
readdress hv1-vm2 10.0.0.1; readdress hv2-vm2 10.0.0.3
say "tenants: blue (VNI 5001) and red (VNI 5002), overlapping 10.0.0.0/24"
weftctl switch create blue --vni 5001
weftctl switch create red --vni 5002
weftctl port create blue hv1-vm1 --mac 02:00:00:00:01:01 --ip 10.0.0.1 >/dev/null
weftctl port create blue hv2-vm1 --mac 02:00:00:00:02:01 --ip 10.0.0.2 >/dev/null
weftctl port create red  hv1-vm2 --mac 02:00:00:00:01:02 --ip 10.0.0.1 >/dev/null
weftctl port create red  hv2-vm2 --mac 02:00:00:00:02:02 --ip 10.0.0.3 >/dev/null

all_up() {
  weftctl port list --json | python3 -c 'import json,sys; sys.exit(0 if all(p["up"] for p in json.load(sys.stdin)) else 1)'
}
for _ in $(seq 300); do all_up && break; sleep 0.1; done
weftctl port list

failed=0
# expect VM IP yes|no: pings from VM; "yes" retries while the first packet to a new tunnel
# peer is lost (OVS resolves the underlay next hop), then 3 pings must all be answered.
expect() {
  local vm=$1 ip=$2 want=$3 ok=no
  if [ "$want" = yes ]; then
    for _ in $(seq 10); do ip netns exec "$(ns "$vm")" ping -c 1 -W 1 "$ip" >/dev/null 2>&1 && break; done
  fi
  ip netns exec "$(ns "$vm")" ping -c 3 -i 0.2 -W 1 "$ip" >/dev/null 2>&1 && ok=yes
  local mac
  mac=$(ip -n "$(ns "$vm")" neigh show "$ip" dev eth0 | awk '/lladdr/ {print $3}')
  if [ "$ok" = "$want" ]; then
    printf '  ok    %-8s -> %-9s %-8s %s\n' "$vm" "$ip" "$( [ "$ok" = yes ] && echo works || echo blocked)" "${mac:+(arp: $mac)}"
  else
    printf '  FAIL  %-8s -> %-9s expected %s\n' "$vm" "$ip" "$( [ "$want" = yes ] && echo works || echo blocked)"
    failed=$((failed + 1))
  fi
}

say "reachability inside each tenant, across hypervisors (same IP, different tenant's MAC)"
expect hv1-vm1 10.0.0.2 yes       # blue
expect hv2-vm1 10.0.0.1 yes       # blue: 10.0.0.1 is blue's hv1-vm1 (02:..:01:01)
expect hv1-vm2 10.0.0.3 yes       # red
expect hv2-vm2 10.0.0.1 yes       # red: 10.0.0.1 is red's hv1-vm2 (02:..:01:02)
say "isolation: what only the other tenant has is unreachable"
expect hv1-vm1 10.0.0.3 no        # 10.0.0.3 is red's
expect hv1-vm2 10.0.0.2 no        # 10.0.0.2 is blue's

say "ACLs on blue's hv1-vm1: egress ICMP to 10.0.0.0/24 allow-related; ingress TCP from 10.0.0.0/24 allow-related (a direction with ACLs drops everything else)"
weftctl acl create hv1-vm1 --direction egress --priority 100 --action allow-related \
  --protocol icmp --remote-cidr 10.0.0.0/24
weftctl acl create hv1-vm1 --direction ingress --priority 100 --action allow-related \
  --protocol tcp --remote-cidr 10.0.0.0/24
for _ in $(seq 300); do
  [ "$(weftctl node flows hv1 | grep -c 'ct(commit')" -ge 2 ] && break
  sleep 0.1
done
expect hv1-vm1 10.0.0.2 yes       # hv1-vm1 starts it: the replies are related (conntrack)
expect hv2-vm1 10.0.0.1 no        # a new ICMP connection towards hv1-vm1: dropped
say "trace: why hv2-vm1 -> hv1-vm1 is dropped (weftctl trace, from the live pipeline)"
weftctl trace hv2-vm1 --eth-dst 02:00:00:00:01:01 --ip-dst 10.0.0.1 --ip-proto 1 | tail -n 6 || true

say "$failed expectation(s) failed; demo took $(elapsed) s before teardown"
[ "$failed" -eq 0 ]
