#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
# The Debian packages: a tree configured for /usr builds the five packages
# with CPack (nbd-runner, nbd-cli, nbd-runner-gluster, nbd-runner-rbd,
# nbd-runner-dev); together they hold exactly what `cmake --install` lays
# out. They are installed with apt into a fresh Debian 12 root made by
# debootstrap, so their Depends must pull in every library they need; the
# programs run from that root: the runner loads all three handlers, nbd-cli
# creates a backstore, qemu-io on the host writes and reads it; the SDK from
# nbd-runner-dev builds the example handler, which the runner then serves.
# Purging keeps saveconfig.json and the file backstores.
source "$(dirname "$0")/../integration/functions.sh"
[ "${NBDR_SANITIZED:-0}" = 0 ] ||
  skip "packages are built and installed once per run, by the plain build's test-packages"
requires debootstrap cpack dpkg-deb dpkg-shlibdeps chroot qemu-io pkg-config cc
[ "$(id -u)" = 0 ] || skip "needs root (debootstrap, chroot)"

# The Debian mirror apt uses on this machine; a fresh root comes from it.
mirror=$(sed -n 's/^URIs: *\([^ ]*\).*/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null | grep -v security | head -1)
[ -n "$mirror" ] || mirror=$(awk '$1 == "deb" && $2 !~ /security/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null)
[ -n "$mirror" ] || skip "no Debian mirror configured for apt"
python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1] + "/dists/bookworm/Release", timeout=15)' \
  "$mirror" 2>/dev/null || skip "the Debian mirror $mirror is not reachable: no fresh root can be made"

# 1. Build the packages.
B="$T/build-deb"
{ cmake -S "$NBDR_SRC" -B "$B" -DCMAKE_INSTALL_PREFIX=/usr -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DNBDR_BUILD_TESTS=OFF && cmake --build "$B" -j "$(nproc)" && (cd "$B" && cpack -G DEB); } \
  >"$T/build.log" 2>&1 || { tail -40 "$T/build.log"; fail "building the packages"; }
version=$("$B/sbin/nbd-runner" --version | awk '{print $2}')
debs=()
for p in nbd-runner nbd-cli nbd-runner-gluster nbd-runner-rbd; do debs+=("$B/${p}_${version}-1_amd64.deb"); done
debs+=("$B/nbd-runner-dev_${version}-1_all.deb")
for d in "${debs[@]}"; do [ -f "$d" ] || fail "missing $(basename "$d")"; done
pass "cpack built ${#debs[@]} packages for $version"

# Together the packages hold what a full install lays out, no more, no less.
DESTDIR="$T/full" cmake --install "$B" >/dev/null
(cd "$T/full" && find . ! -type d | sed 's|^\.||' | sort) >"$T/installed.list"
for d in "${debs[@]}"; do dpkg-deb -c "$d"; done | awk '$1 !~ /^d/ {print $6}' | sed 's|^\.||' | sort >"$T/packaged.list"
diff "$T/installed.list" "$T/packaged.list" >"$T/list.diff" ||
  { cat "$T/list.diff"; fail "packages and cmake --install differ (< install only, > package only)"; }
field() { dpkg-deb -f "$1" "$2"; }
field "${debs[2]}" Depends | grep -q "nbd-runner (= $version-1)" || fail "nbd-runner-gluster does not depend on its runner"
field "${debs[2]}" Depends | grep -q libgfapi0 || fail "nbd-runner-gluster does not depend on libgfapi0"
field "${debs[3]}" Depends | grep -q librbd1 || fail "nbd-runner-rbd does not depend on librbd1"
field "${debs[1]}" Depends | grep -q libnl-genl-3 || fail "nbd-cli does not depend on libnl-genl"
dpkg-deb -I "${debs[0]}" conffiles | grep -qx /etc/nbd-runner/nbd-runner.conf || fail "nbd-runner.conf is not a conffile"
pass "the packages hold exactly the installed files, with library and runner dependencies and conffiles"

# 2. A fresh Debian 12 root (outside $T, never removed across file systems).
R=$(mktemp -d /tmp/nbdr-debroot.XXXXXX)
remove_root() {
  umount -R "$R/proc" 2>/dev/null || true
  if findmnt -rno TARGET | grep -q "^$R/"; then
    echo "left $R in place: something is still mounted under it" >&2
  else
    rm -rf --one-file-system "$R"
  fi
}
cleanup remove_root
debootstrap --variant=minbase bookworm "$R" "$mirror" >"$T/debootstrap.log" 2>&1 ||
  { tail -20 "$T/debootstrap.log"; fail "debootstrap bookworm from $mirror"; }
chmod 755 "$R"
mount -t proc proc "$R/proc"
# The same suites as this machine (updates, security), so the libraries the
# packages were linked against are installable.
cp /etc/apt/sources.list "$R/etc/apt/sources.list" 2>/dev/null || true
cp /etc/apt/sources.list.d/* "$R/etc/apt/sources.list.d/" 2>/dev/null || true
in_root() { chroot "$R" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 "$@"; }
mkdir -p "$R/tmp/debs" && cp "${debs[@]}" "$R/tmp/debs/"
root_debs=()
for d in "${debs[@]}"; do root_debs+=("/tmp/debs/$(basename "$d")"); done
{ in_root apt-get update && in_root env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y --no-install-recommends "${root_debs[@]}"; } >"$T/apt.log" 2>&1 ||
  { tail -30 "$T/apt.log"; fail "apt-get install of the packages into a fresh root"; }
for p in nbd-runner nbd-cli nbd-runner-gluster nbd-runner-rbd nbd-runner-dev; do
  in_root dpkg-query -W -f='${Status}\n' "$p" | grep -q 'install ok installed' || fail "$p not installed"
done
pass "apt installs all five packages into a fresh debootstrap root, dependencies resolved"

# 3. The SDK from nbd-runner-dev (relocatable pkg-config file) builds the
# example handler on the host, installed into the root's handler directory.
export PKG_CONFIG_PATH="$R/usr/lib/pkgconfig"
[ "$(realpath -m "$(pkg-config --variable=handlerdir nbd-runner-handler)")" = "$R/usr/lib/nbd-runner" ] ||
  fail "handlerdir of the packaged pkg-config file: $(pkg-config --variable=handlerdir nbd-runner-handler)"
skel="$R/usr/share/doc/nbd-runner-dev/examples/handler-skeleton"
{ cmake -S "$skel" -B "$T/skel" && cmake --build "$T/skel" && cmake --install "$T/skel"; } \
  >"$T/skel.log" 2>&1 || { cat "$T/skel.log"; fail "the packaged example handler does not build"; }
pass "nbd-runner-dev builds the example handler into the packaged handler directory"

# 4. The packaged programs, run inside the root with their default paths.
in_root nbd-runner --version | grep -q "^nbd-runner $version" || fail "nbd-runner --version"
in_root nbd-clid --version | grep -q "^nbd-clid $version" || fail "nbd-clid --version"
in_root nbd-cli help >/dev/null || fail "nbd-cli help"
: >"$T/root-runner.out"
chroot "$R" env -i PATH=/usr/sbin:/usr/bin LANG=C.UTF-8 nbd-runner --foreground \
  --config /etc/nbd-runner/nbd-runner.conf --rpc-host 127.0.0.1 --rpc-port 0 \
  --io-host 127.0.0.1 --io-port 0 >"$T/root-runner.out" 2>&1 &
RUNNER_PID=$!
stop_root_runner() { kill -TERM "$RUNNER_PID" 2>/dev/null && wait "$RUNNER_PID" 2>/dev/null; }
cleanup stop_root_runner
for _ in $(seq 300); do grep -q 'control RPC listening' "$T/root-runner.out" && break; sleep 0.1; done
RPC_PORT=$(sed -n 's/.*control RPC listening on .* (port \([0-9]*\)).*/\1/p' "$T/root-runner.out")
IO_PORT=$(sed -n 's/.*NBD listening on .* (port \([0-9]*\)).*/\1/p' "$T/root-runner.out")
[ -n "$RPC_PORT" ] && [ -n "$IO_PORT" ] || { cat "$T/root-runner.out"; fail "the packaged runner did not start"; }
for h in file gluster rbd mem; do
  grep -q "loaded handler '$h'.* from /usr/lib/nbd-runner/lib${h}_handler.so" "$T/root-runner.out" ||
    { cat "$T/root-runner.out"; fail "the packaged runner did not load the $h handler"; }
done
pass "the packaged runner starts with the packaged config and loads file, gluster, rbd and mem"

in_root nbd-cli file create disks/a.img size 64M host "127.0.0.1:$RPC_PORT" >/dev/null || fail "nbd-cli file create"
in_root nbd-cli mem create scratch size 16M host "127.0.0.1:$RPC_PORT" >/dev/null || fail "nbd-cli mem create"
for e in file/disks/a.img mem/scratch; do
  qemu-io -f raw -c 'write -P 0x5a 0 4M' -c 'flush' -c 'read -P 0x5a 0 4M' \
    "nbd://127.0.0.1:$IO_PORT/$e" >"$T/qio" 2>&1 || { cat "$T/qio"; fail "qemu-io on $e"; }
  grep -q 'verification failed' "$T/qio" && { cat "$T/qio"; fail "wrong data read from $e"; }
done
[ -f "$R/var/lib/nbd-runner/file/disks/a.img" ] || fail "the file backstore is not in /var/lib/nbd-runner/file"
in_root nbd-cli file list host "127.0.0.1:$RPC_PORT" | grep -q 'disks/a.img' || fail "nbd-cli file list"
kill -TERM "$RUNNER_PID"; wait "$RUNNER_PID" || fail "the packaged runner did not stop cleanly"
grep -q '"disks/a.img"' "$R/etc/nbd-runner/saveconfig.json" || fail "saveconfig.json not in /etc/nbd-runner"
[ -s "$R/var/log/nbd-runner/nbd-runner.log" ] || fail "no log in /var/log/nbd-runner"
pass "nbd-cli in the root creates backstores, qemu-io reads back what it wrote, state and log in the default places"

# 5. Purge: programs gone, the registry and the backstore data kept.
rm -f "$R/usr/lib/nbd-runner/libmem_handler.so"
in_root dpkg --purge nbd-runner-dev nbd-runner-gluster nbd-runner-rbd nbd-cli nbd-runner >"$T/purge.log" 2>&1 ||
  { cat "$T/purge.log"; fail "dpkg --purge"; }
[ ! -e "$R/usr/sbin/nbd-runner" ] && [ ! -e "$R/usr/lib/nbd-runner/libgluster_handler.so" ] ||
  fail "purge left programs behind"
[ -f "$R/etc/nbd-runner/saveconfig.json" ] && [ -f "$R/var/lib/nbd-runner/file/disks/a.img" ] ||
  fail "purge removed saveconfig.json or a backstore"
grep -q "kept /etc/nbd-runner/saveconfig.json" "$T/purge.log" || { cat "$T/purge.log"; fail "purge did not say what it kept"; }
pass "purge removes the programs and keeps saveconfig.json and the backstore data, saying so"
