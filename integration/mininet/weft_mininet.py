"""weft_mininet: Weft hypervisors and VMs built with Mininet's API.

Topology (everything below the root namespace lives in a private network namespace,
``weftmn-<pid>``, so Mininet's switch and interface names never meet anybody else's):

    root namespace: weftd, listening on 0.0.0.0 (or CONTROLLER_IP)
      wmn<pid>  CONTROLLER_IP/24                      (veth, created by ``outer``)
        |
    weftmn-<pid>: s0 = OVSSwitch(datapath=user, fail_mode=standalone): the underlay
        |  ctl0 (the veth's other end), hvN's ul0 ...
    hvN   Mininet Host running its own ovsdb-server + ovs-vswitchd (userspace datapath,
          files in BASE/hvN): br-phy(ul0) with UNDERLAY.N/24, br-int (netdev, empty).
          Open_vSwitch external_ids: system-id=hvN, weft-encap-ip, weft-encap-type.
          The only thing pointed at weftd is the manager (set-manager tcp:CTL:PORT);
          weftd configures br-int, tunnels and flows itself.
    vmN_M Mininet Host, eth0 linked to hvN's port vmN_M on br-int
          (external_ids:iface-id=vmN_M, attached-mac), MAC 02:00:00:00:NN:MM.

Public entry points (used by the ``weft-mininet`` script):
    WeftTopo(hypervisors, vms_per_hv, ip_of)   the Mininet Topo
    Lab(options).start() / .stop()              build or tear down inside the namespace
    Lab.run_checks(spec) -> dict                pings as JSON-able results
    outer(argv), inner(options)                 the two halves of the script
"""
import ipaddress
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

SCHEMA = '/usr/share/openvswitch/vswitch.ovsschema'
VM_MTU = 1400
# 10.K.0.0/24 for K in this range; weft-lab uses 100..249, the shared recipe 10.99.
AUTO_SUBNETS = range(90, 99)
INSIDE_ENV = 'WEFT_MN_INSIDE'


class LabError(Exception):
    """Something the lab could not build; the message names the node."""


def sh(cmd, check=True):
    r = subprocess.run(cmd, shell=True, capture_output=True, text=True)
    if check and r.returncode:
        raise LabError('%s -> rc %d: %s%s' % (cmd, r.returncode, r.stdout, r.stderr))
    return r.stdout


def log(msg):
    print('weft-mininet: ' + msg, file=sys.stderr, flush=True)


# --------------------------------------------------------------------- naming
def vm_name(n, m):
    return 'vm%d_%d' % (n, m)


def vm_mac(n, m):
    return '02:00:00:00:%02x:%02x' % (n, m)


def default_ip(plan, n, m):
    """unique: 192.168.N.M/16 (as weft-lab); overlap: 10.0.0.N/24 for every M (VM index M
    is tenant M, so tenants reuse each other's addresses)."""
    if plan == 'overlap':
        return '10.0.0.%d/24' % n
    return '192.168.%d.%d/16' % (n, m)


def host_uses(prefix):
    text = sh('ip -4 -o addr show; ip -4 route show table all', check=False)
    return any(w.startswith(prefix) for w in text.replace('/', ' ').split())


def pick_controller_ip():
    for k in AUTO_SUBNETS:
        if not host_uses('10.%d.' % k):
            return '10.%d.0.254' % k
    raise LabError('no free 10.K.0.0/24 for K in %d..%d' % (AUTO_SUBNETS[0], AUTO_SUBNETS[-1]))


# --------------------------------------------------------------------- topology
def _topo_class():
    from mininet.topo import Topo

    class WeftTopo(Topo):
        """s0 underlay; hvN hosts linked to it (ul0); vmN_M hosts linked to hvN."""

        def build(self, hypervisors=3, vms_per_hv=2, ip_of=None):
            s0 = self.addSwitch('s0', datapath='user', failMode='standalone')
            for n in range(1, hypervisors + 1):
                hv = self.addHost('hv%d' % n, ip=None)
                self.addLink(hv, s0, intfName1='ul0')
                for m in range(1, vms_per_hv + 1):
                    name = vm_name(n, m)
                    vm = self.addHost(name, ip=ip_of(n, m), mac=vm_mac(n, m))
                    self.addLink(vm, hv, intfName1='eth0', intfName2=name)

    return WeftTopo


def _underlay_class():
    from mininet.node import OVSSwitch

    class Underlay(OVSSwitch):
        """A standalone learning switch: never given a controller."""

        def start(self, controllers):
            return OVSSwitch.start(self, [])

    return Underlay


# --------------------------------------------------------------------- the lab
class Lab:
    """Builds and tears down the Mininet network; runs inside the private namespace."""

    def __init__(self, opts):
        self.opts = opts
        self.base = os.environ['WEFT_MN_BASE']
        self.ctl = ipaddress.ip_address(opts.controller)
        self.net24 = '.'.join(opts.controller.split('.')[:3])
        self.net = None
        self.hvs = {}
        self.vms = {}

    def ip_of(self, n, m):
        return self.opts.vm_ips.get(vm_name(n, m)) or default_ip(self.opts.ip_plan, n, m)

    def ovs_env(self, name):
        d = os.path.join(self.base, name)
        return {'OVS_RUNDIR': d + '/run', 'OVS_DBDIR': d + '/db',
                'OVS_LOGDIR': d + '/log', 'OVS_SYSCONFDIR': d + '/etc'}

    def start_root_ovs(self):
        """The OVS instance of this namespace, for s0 (Mininet's switches use it)."""
        env = self.ovs_env('underlay')
        for d in env.values():
            os.makedirs(d, exist_ok=True)
        os.environ.update(env)  # before Mininet runs any ovs-vsctl
        sh('ovsdb-tool create $OVS_DBDIR/conf.db %s' % SCHEMA)
        sh('ovsdb-server $OVS_DBDIR/conf.db --remote=punix:$OVS_RUNDIR/db.sock '
           '--pidfile --detach --no-chdir --log-file -vconsole:off')
        sh('ovs-vsctl --no-wait init')
        sh('ovs-vswitchd --pidfile --detach --no-chdir --log-file -vconsole:off')

    def hv_cmd(self, hv, cmd, what):
        out = hv.cmd(cmd + '; echo "rc=$?"')
        lines = out.strip().splitlines()
        if not lines or lines[-1] != 'rc=0':
            raise LabError('%s: %s failed: %s' % (hv.name, what, out.strip()))
        return '\n'.join(lines[:-1])

    def start_hypervisor(self, n, hv):
        env = self.ovs_env(hv.name)
        for d in env.values():
            os.makedirs(d, exist_ok=True)
        hv.cmd('export ' + ' '.join('%s=%s' % kv for kv in env.items()))
        hv.cmd('sysctl -qw net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.default.arp_ignore=1 '
               'net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1')
        self.hv_cmd(hv, 'ovsdb-tool create $OVS_DBDIR/conf.db %s && '
                    'ovsdb-server $OVS_DBDIR/conf.db --remote=punix:$OVS_RUNDIR/db.sock '
                    '--remote=db:Open_vSwitch,Open_vSwitch,manager_options '
                    '--pidfile --detach --no-chdir --log-file -vconsole:off' % SCHEMA,
                    'ovsdb-server')
        encap_ip = '%s.%d' % (self.net24, n)
        self.hv_cmd(hv, 'ovs-vsctl --no-wait -- init -- set Open_vSwitch . '
                    'external_ids:system-id=%s external_ids:hostname=%s '
                    'external_ids:weft-encap-ip=%s external_ids:weft-encap-type=%s '
                    'other_config:n-handler-threads=1 other_config:n-revalidator-threads=1'
                    % (hv.name, hv.name, encap_ip, self.opts.encap), 'Open_vSwitch external_ids')
        self.hv_cmd(hv, 'ovs-vswitchd --pidfile --detach --no-chdir --log-file -vconsole:off',
                    'ovs-vswitchd')
        # br-int is created here with the userspace datapath: weftd never changes
        # datapath_type, it configures everything else.
        self.hv_cmd(hv, 'ovs-vsctl --timeout=20 -- add-br br-phy -- set Bridge br-phy '
                    'datapath_type=netdev -- add-port br-phy ul0 '
                    '-- add-br br-int -- set Bridge br-int datapath_type=netdev',
                    'br-phy/br-int')
        self.hv_cmd(hv, 'ethtool -K ul0 tx off >/dev/null && '
                    'ip addr add %s/24 dev br-phy && ip link set br-phy up' % encap_ip,
                    'transport IP on br-phy')
        ports = ''
        for m in range(1, self.opts.vms_per_hv + 1):
            name = vm_name(n, m)
            self.hv_cmd(hv, 'ip link set %s mtu %d && ethtool -K %s tx off >/dev/null'
                        % (name, VM_MTU, name), 'VM link ' + name)
            ports += (' -- add-port br-int {p} -- set Interface {p} external_ids:iface-id={p} '
                      'external_ids:attached-mac="{mac}" external_ids:iface-status=active'
                      ).format(p=name, mac=vm_mac(n, m))
        if ports:
            self.hv_cmd(hv, 'ovs-vsctl --timeout=20' + ports, 'VM ports')
        for m in range(1, self.opts.vms_per_hv + 1):
            name = vm_name(n, m)
            err = self.hv_cmd(hv, 'ovs-vsctl get Interface %s error' % name, 'port ' + name)
            if err.strip() not in ('[]', ''):
                raise LabError('%s: port %s: %s' % (hv.name, name, err.strip()))

    def start(self):
        from mininet.net import Mininet
        from mininet.log import setLogLevel
        setLogLevel('warning')
        t0 = time.time()
        sh('ip link set lo up && ip link set ctl0 up')
        self.start_root_ovs()
        topo = _topo_class()(hypervisors=self.opts.hypervisors,
                             vms_per_hv=self.opts.vms_per_hv, ip_of=self.ip_of)
        self.net = Mininet(topo=topo, switch=_underlay_class(), controller=None,
                           autoSetMacs=False, waitConnected=False, build=False)
        self.net.build()
        # Every shell Mininet started: the outer half kills these by PID if we die.
        with open(os.path.join(self.base, 'pids'), 'w') as f:
            f.write('\n'.join(str(h.pid) for h in self.net.hosts))
        self.net.start()
        sh('ovs-vsctl add-port s0 ctl0')
        for intf in sh('ls /sys/class/net').split():
            if intf.startswith('s0-') or intf == 'ctl0':
                sh('ethtool -K %s tx off' % intf, check=False)
        for n in range(1, self.opts.hypervisors + 1):
            self.hvs[n] = self.net.get('hv%d' % n)
            for m in range(1, self.opts.vms_per_hv + 1):
                vm = self.net.get(vm_name(n, m))
                self.vms[vm.name] = vm
                vm.cmd('sysctl -qw net.ipv6.conf.all.disable_ipv6=1')
                vm.cmd('ip link set eth0 mtu %d; ethtool -K eth0 tx off >/dev/null' % VM_MTU)
        for n, hv in self.hvs.items():
            self.start_hypervisor(n, hv)
        t1 = time.time()
        target = 'tcp:%s:%d' % (self.ctl, self.opts.ovsdb_port)
        for hv in self.hvs.values():
            self.hv_cmd(hv, 'ovs-vsctl set-manager ' + target, 'set-manager')
        log('up in %.2f s: %d hypervisors x %d VMs, encap %s, underlay %s.0/24, manager %s'
            % (t1 - t0, len(self.hvs), self.opts.vms_per_hv, self.opts.encap, self.net24, target))
        for name, vm in sorted(self.vms.items()):
            log('  %-8s on %-5s mac %s ip %s' % (name, 'hv' + name[2:].split('_')[0],
                                                 vm.MAC('eth0'), vm.IP('eth0')))
        return t1 - t0

    def stop(self):
        t0 = time.time()
        # The hypervisors' own OVS daemons first (pidfiles under BASE/hvN), by PID:
        # ovsdb-server before ovs-vswitchd, whose br-phy carries the manager connection,
        # so weftd sees the hypervisors close their sessions.
        on_hv = lambda top: top.startswith('hv')  # noqa: E731
        kill_pidfiles(self.base, on_hv, 'ovsdb-server.pid')
        kill_pidfiles(self.base, on_hv)
        if self.net is not None:
            for h in self.net.hosts:
                if h.waiting:  # interrupted in the middle of a command: stop it
                    h.sendInt()
                    h.waiting = False
            self.net.stop()
        kill_pidfiles(self.base)
        return time.time() - t0

    # ----------------------------------------------------------------- checks
    def wait_installed(self, names, timeout):
        """Waits until weftd marks each VM's interface weft-installed=true."""
        deadline = time.time() + timeout
        done = {}
        for name in names:
            n = int(name[2:].split('_')[0])
            left = max(1, int(deadline - time.time()))
            out = self.hvs[n].cmd('ovs-vsctl --timeout=%d wait-until Interface %s '
                                  'external_ids:weft-installed=true; echo "rc=$?"' % (left, name))
            done[name] = out.strip().endswith('rc=0')
        return done

    def ping(self, vm, ip, expect, timeout):
        """expect=True: ping once a second until answered (the first packet to a new tunnel
        peer is lost while OVS resolves the underlay next hop), then 3 more must all be
        answered. expect=False: 3 pings, all must be lost."""
        if expect:
            deadline = time.time() + timeout
            while time.time() < deadline:
                if ' 0% packet loss' in vm.cmd('ping -c 1 -W 1 %s' % ip):
                    break
        out = vm.cmd('ping -c 3 -i 0.2 -W 1 %s' % ip)
        received = 0
        for line in out.splitlines():
            if 'packets transmitted' in line:
                received = int(line.split(',')[1].split()[0])
        neigh = vm.cmd('ip neigh show %s dev eth0' % ip).split()
        mac = neigh[neigh.index('lladdr') + 1] if 'lladdr' in neigh else None
        return {'sent': 3, 'received': received, 'reachable': received == 3, 'mac': mac}

    def run_checks(self, spec):
        timeout = spec.get('timeout', 30)
        waits = spec.get('wait_installed', sorted(self.vms))
        result = {'hypervisors': sorted(h.name for h in self.hvs.values()),
                  'vms': {name: {'mac': vm.MAC('eth0'), 'ip': vm.IP('eth0')}
                          for name, vm in self.vms.items()},
                  'installed': self.wait_installed(waits, timeout), 'pings': []}
        for p in spec.get('pings', []):
            src = self.vms.get(p['from'])
            if src is None:
                raise LabError('check names unknown VM %s' % p['from'])
            r = self.ping(src, p['to'], bool(p['expect']), timeout)
            r.update({'from': p['from'], 'to': p['to'], 'expect': bool(p['expect'])})
            log('  %-4s %s -> %s (expect %s): %d/3 answered, neighbour %s'
                % ('ok' if r['reachable'] == r['expect'] else 'FAIL', p['from'], p['to'],
                   'reachable' if p['expect'] else 'unreachable', r['received'], r['mac']))
            result['pings'].append(r)
        result['passed'] = sum(1 for r in result['pings'] if r['reachable'] == r['expect'])
        result['failed'] = len(result['pings']) - result['passed']
        return result


def kill_pidfiles(base, which=lambda _top: True, name=None):
    """Stops every OVS daemon whose pidfile (named `name`, or any *.pid) lies under base
    (ours only) in a top-level directory `which` accepts, and waits for them."""
    pids = []
    for root, _dirs, files in os.walk(base):
        rel = os.path.relpath(root, base).split(os.sep)[0]
        if not which(rel):
            continue
        for f in files:
            if f.endswith('.pid') and name in (None, f):
                try:
                    with open(os.path.join(root, f)) as fh:
                        pid = int(fh.read().strip())
                    os.kill(pid, signal.SIGTERM)
                    pids.append(pid)
                except (ValueError, OSError):
                    pass
    deadline = time.time() + 10
    while time.time() < deadline and any(os.path.exists('/proc/%d' % p) for p in pids):
        time.sleep(0.1)
    for p in pids:
        try:
            os.kill(p, signal.SIGKILL)
        except OSError:
            pass


# --------------------------------------------------------------------- the two halves
def inner(opts):
    """Runs in the private namespace: build, then CLI or checks, then always tear down."""
    def on_term(_sig, _frame):
        # One interrupt is enough (timeout(1) signals the whole group, the outer half
        # forwards it too): the teardown below must not be interrupted again.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_term)
    lab = Lab(opts)
    rc = 1
    try:
        up = lab.start()
        if opts.check:
            with open(opts.check) as f:
                spec = json.load(f)
            t0 = time.time()
            result = lab.run_checks(spec)
            result['up_seconds'] = round(up, 2)
            result['check_seconds'] = round(time.time() - t0, 2)
            text = json.dumps(result, indent=1, sort_keys=True)
            if opts.result:
                with open(opts.result, 'w') as f:
                    f.write(text)
            else:
                print(text)
            log('%d passed, %d failed' % (result['passed'], result['failed']))
            rc = 0 if result['failed'] == 0 else 2
        else:
            from mininet.cli import CLI
            from mininet.log import setLogLevel
            setLogLevel('output')  # the CLI prints command output at this level
            log('Mininet CLI: nodes %s; "exit" tears the lab down'
                % ' '.join(sorted(h.name for h in lab.net.hosts)))
            CLI(lab.net)
            rc = 0
    except LabError as e:
        log('error: %s' % e)
    except KeyboardInterrupt:
        log('interrupted')
    finally:
        log('torn down in %.2f s' % lab.stop())
    return rc


def outer(opts, script):
    """Root namespace: the namespace and the controller veth, re-run inside, clean up."""
    if os.geteuid() != 0:
        raise SystemExit('weft-mininet: run as root')
    try:
        import mininet  # noqa: F401
    except ImportError:
        raise SystemExit('weft-mininet: no mininet module in %s: use /usr/bin/python3 '
                         '(Debian package mininet)' % sys.executable)
    if opts.controller is None:
        opts.controller = pick_controller_ip()
    elif host_uses('.'.join(opts.controller.split('.')[:3]) + '.'):
        raise SystemExit('weft-mininet: %s/24 is already used on this host; pick another '
                         '--controller' % opts.controller)
    tag = str(os.getpid())
    ns, veth = 'weftmn-' + tag, 'wmn' + tag
    base = tempfile.mkdtemp(prefix='weftmn-%s-' % tag)
    child = None

    def forward(sig, _frame):
        if child is not None and child.poll() is None:
            child.send_signal(signal.SIGTERM)
    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the inner half handles Ctrl-C
    rc = 1
    try:
        sh('ip netns add %s' % ns)
        sh('ip link add %s type veth peer name ctl0 netns %s' % (veth, ns))
        sh('ip addr add %s/24 dev %s && ip link set %s up' % (opts.controller, veth, veth))
        sh('ethtool -K %s tx off' % veth, check=False)
        env = dict(os.environ, **{INSIDE_ENV: '1', 'WEFT_MN_BASE': base})
        child = subprocess.Popen(['ip', 'netns', 'exec', ns, sys.executable, script]
                                 + sys.argv[1:] + ['--controller', opts.controller], env=env,
                                 preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        while True:
            try:
                rc = child.wait()
                break
            except KeyboardInterrupt:
                continue
    except LabError as e:
        log('error: %s' % e)
    finally:
        if child is not None and child.poll() is None:
            child.kill()
            child.wait()
        kill_pidfiles(base)
        # Mininet's host shells, if the inner half died before net.stop().
        try:
            with open(os.path.join(base, 'pids')) as f:
                for pid in f.read().split():
                    try:
                        os.kill(int(pid), signal.SIGKILL)
                    except (ValueError, OSError):
                        pass
        except OSError:
            pass
        for pid in sh('ip netns pids %s' % ns, check=False).split():
            try:
                os.kill(int(pid), signal.SIGKILL)  # only our own processes live there
            except (ValueError, OSError):
                pass
        subprocess.run(['ip', 'netns', 'del', ns], stderr=subprocess.DEVNULL)
        subprocess.run(['ip', 'link', 'del', veth], stderr=subprocess.DEVNULL)
        shutil.rmtree(base, ignore_errors=True)
    return rc


def parse_args(argv):
    import argparse
    ap = argparse.ArgumentParser(
        prog='weft-mininet',
        description='Weft hypervisors (own OVS each) and VMs in Mininet, managed by weftd.')
    ap.add_argument('--hypervisors', type=int, default=2)
    ap.add_argument('--vms-per-hv', type=int, default=2)
    ap.add_argument('--encap', choices=('geneve', 'vxlan'), default='geneve')
    ap.add_argument('--controller', metavar='IP',
                    help='address weftd is reached at; put on the root end of the underlay '
                         '(default: first free 10.K.0.254, K in 90..98)')
    ap.add_argument('--ovsdb-port', type=int, default=6640,
                    help="weftd's OVSDB manager port (set-manager tcp:IP:PORT)")
    ap.add_argument('--ip-plan', choices=('unique', 'overlap'), default='unique',
                    help='unique: vmN_M has 192.168.N.M/16; overlap: 10.0.0.N/24 for every M')
    ap.add_argument('--vm-ip', action='append', default=[], metavar='VM=CIDR',
                    help='override one VM address, e.g. vm3_2=10.0.0.4/24')
    ap.add_argument('--check', metavar='FILE',
                    help='scripted check (JSON: {"pings": [{"from","to","expect"}], '
                         '"timeout"}) instead of the CLI')
    ap.add_argument('--result', metavar='FILE', help='write the check result JSON here')
    opts = ap.parse_args(argv)
    if not 1 <= opts.hypervisors <= 200 or not 0 <= opts.vms_per_hv <= 50:
        ap.error('--hypervisors must be 1..200 and --vms-per-hv 0..50')
    opts.vm_ips = {}
    for item in opts.vm_ip:
        name, _, cidr = item.partition('=')
        if not cidr:
            ap.error('--vm-ip wants VM=CIDR, got %s' % item)
        opts.vm_ips[name] = cidr
    return opts


def main(script):
    opts = parse_args(sys.argv[1:])
    if os.environ.get(INSIDE_ENV) == '1':
        return inner(opts)
    return outer(opts, script)
