#!/bin/sh
# Entry point of a Weft hypervisor container (see docker-compose.yml). Environment:
#   HV_NUMBER    N: system-id hvN, VMs hvN-vmM (MAC 02:00:00:00:0N:0M, IP 192.168.N.M/16)
#   VMS_PER_HV   VMs to create as network namespaces (default 2)
#   WEFT_MANAGER weftd's OVSDB target, e.g. tcp:172.30.0.254:6640
#   WEFT_ENCAP   geneve (default) or vxlan
# Runs ovsdb-server + ovs-vswitchd (userspace datapath) in the foreground until stopped.
set -eu
n=${HV_NUMBER:?HV_NUMBER is required}
vms=${VMS_PER_HV:-2}
manager=${WEFT_MANAGER:?WEFT_MANAGER is required}
encap=${WEFT_ENCAP:-geneve}
hv="hv$n"

# The transport address Docker gave eth0 moves to br-phy: the userspace tunnel stack needs
# it on a netdev bridge's internal port.
cidr=$(ip -4 -o addr show dev eth0 | awk '{print $4; exit}')
gw=$(ip -4 route show default | awk '{print $3; exit}')
ip=${cidr%/*}

mkdir -p /var/run/openvswitch /etc/openvswitch /var/log/openvswitch
[ -f /etc/openvswitch/conf.db ] || \
  ovsdb-tool create /etc/openvswitch/conf.db /usr/share/openvswitch/vswitch.ovsschema
ovsdb-server /etc/openvswitch/conf.db --remote=punix:/var/run/openvswitch/db.sock \
  --remote=db:Open_vSwitch,Open_vSwitch,manager_options \
  --pidfile --detach --no-chdir --log-file -vconsole:off
ovs-vsctl --no-wait -- init -- set Open_vSwitch . \
  external_ids:system-id="$hv" external_ids:hostname="$hv" \
  external_ids:weft-encap-ip="$ip" external_ids:weft-encap-type="$encap"
ovs-vswitchd --pidfile --detach --no-chdir --log-file -vconsole:off

sysctl -qw net.ipv4.conf.all.arp_ignore=1 2>/dev/null || true
ethtool -K eth0 tx off >/dev/null 2>&1 || true
ovs-vsctl --may-exist add-br br-phy -- set Bridge br-phy datapath_type=netdev \
  -- --may-exist add-port br-phy eth0 \
  -- --may-exist add-br br-int -- set Bridge br-int datapath_type=netdev
ip addr flush dev eth0
ip addr add "$cidr" dev br-phy
ip link set br-phy up
[ -z "$gw" ] || ip route replace default via "$gw" dev br-phy

m=1
while [ "$m" -le "$vms" ]; do
  vm="hv$n-vm$m"
  mac=$(printf '02:00:00:00:%02x:%02x' "$n" "$m")
  ip netns add "$vm" 2>/dev/null || true
  ip link add "$vm" type veth peer name eth0 netns "$vm"
  ip -n "$vm" link set eth0 address "$mac" mtu 1400 up
  ip -n "$vm" addr add "192.168.$n.$m/16" dev eth0
  ip -n "$vm" link set lo up
  ip netns exec "$vm" ethtool -K eth0 tx off >/dev/null 2>&1 || true
  ip link set "$vm" mtu 1400 up
  ovs-vsctl --may-exist add-port br-int "$vm" -- set Interface "$vm" \
    external_ids:iface-id="$vm" external_ids:attached-mac="\"$mac\"" \
    external_ids:iface-status=active
  m=$((m + 1))
done

# Manager and nothing else: weftd configures br-int, the tunnels and the flows.
ovs-vsctl set-manager "$manager"
echo "$hv up: transport $ip, $vms VMs, manager $manager"

sleeper=""
stop() {
  [ -z "$sleeper" ] || kill "$sleeper" 2>/dev/null || true
  ovs-appctl -t ovs-vswitchd exit || true
  ovs-appctl -t ovsdb-server exit || true
  exit 0
}
trap stop TERM INT
while :; do
  sleep 3600 &
  sleeper=$!
  wait "$sleeper" || true
done
