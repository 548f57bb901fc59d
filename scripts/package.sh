#!/usr/bin/env bash
# Builds the weft Debian package with cargo-deb - weftd, weftctl, the systemd unit, a
# commented /etc/weft/weftd.toml, man pages (clap_mangen) and weftctl's bash/zsh/fish
# completions (clap_complete), the last two rendered now by weft-docs, not checked in - and
# then checks it on this machine: dpkg -i, weftd --version, systemd-analyze verify on the
# installed unit, the man pages and completions in place, a smoke start of the installed
# weftd, then removes the package again (dpkg -r, then purge).
#
# Usage: scripts/package.sh [--build-only]     (the check needs root, for dpkg)
# Prints the path of the .deb. Refuses to run the check when a weft package is already
# installed, so that it never replaces or removes a real installation.
set -euo pipefail
cd "$(dirname "$0")/.."

check=1
case "${1:-}" in
  --build-only) check=0 ;;
  "") ;;
  *) echo "usage: $0 [--build-only]" >&2; exit 2 ;;
esac

if ! command -v cargo-deb >/dev/null 2>&1; then
  echo "== installing cargo-deb"
  cargo install cargo-deb --locked
fi
target=$(cargo metadata --format-version 1 --no-deps \
  | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')

echo "== building weftd, weftctl, weft-docs (release)"
cargo build --release -p weft-controller --bins
docs="$target/release/package-docs"
rm -rf "$docs"
"$target/release/weft-docs" "$docs" >/dev/null
echo "== cargo deb"
# --no-build: package the binaries just built (cargo-deb's own build resolves the workspace's
# features differently and would compile every dependency a second time); --strip: the
# release profile's line tables stay out of the package.
deb=$(cargo deb -p weft-controller --no-build --strip | tail -n 1)
[ -f "$deb" ] || { echo "cargo deb printed no package path (got: $deb)" >&2; exit 1; }
echo "$deb"
dpkg-deb --info "$deb" | sed -n '/Package:/,$p'
dpkg-deb --contents "$deb"
[ "$check" = 1 ] || exit 0

if dpkg-query -W -f='${Status}' weft 2>/dev/null | grep -q installed; then
  echo "a weft package is already installed here; not touching it (use --build-only)" >&2
  exit 1
fi
tmp=$(mktemp -d /tmp/weft-package-check.XXXXXX)
weftd_pid=""
cleanup() {
  [ -n "$weftd_pid" ] && kill "$weftd_pid" 2>/dev/null || true
  dpkg -r weft >/dev/null 2>&1 || true
  dpkg -P weft >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT

echo "== dpkg -i"
dpkg -i "$deb"
version=$(dpkg-deb -f "$deb" Version)
echo "== weftd --version / weftctl --version"
/usr/bin/weftd --version | tee "$tmp/v"
grep -q "^weftd ${version%-*}$" "$tmp/v"
/usr/bin/weftctl --version
unit=$(dpkg -L weft | grep '/systemd/system/weftd.service$')
echo "== systemd-analyze verify $unit"
systemd-analyze verify "$unit"
grep -q '^Type=notify$' "$unit"
echo "== man pages and completions"
man -w weftd weftctl weftctl-switch
cmp <(/usr/bin/weftctl completions bash) /usr/share/bash-completion/completions/weftctl
test -s /usr/share/zsh/vendor-completions/_weftctl
test -s /usr/share/fish/vendor_completions.d/weftctl.fish
echo "== the installed weftd starts with the installed config and serves /metrics"
/usr/bin/weftd --config /etc/weft/weftd.toml --data-dir "$tmp/data" \
  --api-listen 127.0.0.1:0 --openflow-listen tcp:127.0.0.1:0 --ovsdb-listen tcp:127.0.0.1:0 \
  >"$tmp/out" 2>"$tmp/err" &
weftd_pid=$!
for _ in $(seq 100); do
  grep -q "api listening on" "$tmp/out" && break
  sleep 0.1
done
addr=$(sed -n 's/^weftd: api listening on //p' "$tmp/out")
[ -n "$addr" ] || { cat "$tmp/err" >&2; exit 1; }
curl -fsS -o "$tmp/metrics" "http://$addr/metrics"
grep -q '^weft_hypervisors_connected{protocol="ovsdb"} 0$' "$tmp/metrics"
kill "$weftd_pid"
wait "$weftd_pid" || true
weftd_pid=""
echo "== dpkg -r"
dpkg -r weft
echo "package check passed: $deb"
