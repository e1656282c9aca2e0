# SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
# The qemu guest harness (sourced after tests/integration/functions.sh).
#
# run_guest SCRIPT: boots Debian's kernel (tests/vm/fetch-kernel) under
# qemu-system-x86_64 with a busybox initramfs that holds nbd.ko, e2fsprogs
# and this build's nbd-cli, runs SCRIPT (sh) inside, and prints the
# guest's "RESULT ..." lines. The guest reaches the host as 10.0.2.2
# (slirp), so a runner bound to 127.0.0.1 on the host is reachable. KVM is
# used when it works, TCG otherwise; a guest that hangs is killed after
# $VM_TIMEOUT seconds (default 300) and the test fails.
#
# Inside SCRIPT: r "text" reports a result line; `ok NAME CMD...` runs CMD
# and reports "ok NAME" or "FAIL NAME". Files listed in VM_FILES (host
# paths of files or directories, space-separated) are copied into the
# guest's /files, modes kept.
# The guest has kernel TLS (tls.ko and the AES-GCM and ChaCha20-Poly1305
# modules, loaded at boot: the guest has no modprobe).

requires qemu-system-x86_64 cpio python3 mke2fs e2fsck
case "$(ldd /bin/busybox 2>&1 || true)" in
  *"not a dynamic"*) ;;
  *) skip "needs busybox-static (a static /bin/busybox)" ;;
esac
KROOT=$(bash "$NBDR_SRC/tests/vm/fetch-kernel" 2>"$T/fetch.err") || skip "cannot get Debian's kernel package: $(cat "$T/fetch.err")"

_copy_with_libs() {  # root binary...
  local root=$1 b l
  shift
  for b in "$@"; do
    cp -L "$b" "$root/bin/"
    for l in $(ldd "$b" 2>/dev/null | grep -o '/[^ ]*'); do
      mkdir -p "$root$(dirname "$l")"
      cp -Ln "$l" "$root$(dirname "$l")/" 2>/dev/null || true
    done
  done
}

_build_initramfs() {  # guest-script output
  local R="$T/vmroot" K M f m
  K=$(ls "$KROOT/lib/modules" | sort -V | tail -1)
  M="$KROOT/lib/modules/$K/kernel"
  rm -rf "$R"
  mkdir -p "$R"/{bin,etc,proc,sys,dev,tmp,mnt,lib/mod}
  cp /bin/busybox "$R/bin/"
  for a in sh mount umount insmod ip dd cat sleep poweroff cmp awk cut sha256sum sync ls mkdir \
    echo grep head tail rm cp seq sed uname true false stat wc tr df; do ln -s busybox "$R/bin/$a"; done
  for m in drivers/virtio/virtio_ring drivers/virtio/virtio drivers/virtio/virtio_pci_legacy_dev \
    drivers/virtio/virtio_pci_modern_dev drivers/virtio/virtio_pci net/core/failover \
    drivers/net/net_failover drivers/net/virtio_net drivers/block/nbd lib/crc16 \
    fs/mbcache fs/jbd2/jbd2 lib/crc32c_generic crypto/crc32c_generic fs/ext4/ext4 \
    crypto/gf128mul crypto/ghash-generic crypto/ctr crypto/gcm lib/crypto/libchacha \
    crypto/chacha_generic lib/crypto/libpoly1305 crypto/poly1305_generic \
    crypto/chacha20poly1305 net/tls/tls; do
    f=$(ls "$M/$m.ko"* 2>/dev/null | head -1) || true
    [ -n "$f" ] || continue
    case $f in
      *.xz) xz -dc "$f" ;;
      *.zst) zstd -qdc "$f" ;;
      *) cat "$f" ;;
    esac >"$R/lib/mod/$(basename "$m").ko"
  done
  _copy_with_libs "$R" "$CLI" "$NBDR_BUILD/sbin/nbd-clid" "$(command -v mke2fs)" "$(command -v e2fsck)" \
    "$(command -v resize2fs)"
  if [ -x /usr/sbin/nbd-client ]; then _copy_with_libs "$R" /usr/sbin/nbd-client; fi
  ln -s mke2fs "$R/bin/mkfs.ext4"
  cp /etc/mke2fs.conf "$R/etc/" 2>/dev/null || true
  cp /etc/netconfig "$R/etc/" 2>/dev/null || true
  echo 'root:x:0:0::/:/bin/sh' >"$R/etc/passwd"
  echo 'root:x:0:' >"$R/etc/group"
  cp "$1" "$R/test.sh"
  mkdir -p "$R/files"
  for f in ${VM_FILES:-}; do cp -rp "$f" "$R/files/"; done
  cat >"$R/init" <<'INIT'
#!/bin/sh
export PATH=/bin
mount -t proc p /proc; mount -t sysfs s /sys; mount -t devtmpfs d /dev
for m in virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci failover \
         net_failover virtio_net nbd crc16 mbcache jbd2 crc32c_generic ext4 \
         gf128mul ghash-generic ctr gcm libchacha chacha_generic libpoly1305 poly1305_generic \
         chacha20poly1305 tls; do
  [ -f /lib/mod/$m.ko ] && insmod /lib/mod/$m.ko 2>/dev/null
done
ip link set lo up; ip link set eth0 up; ip addr add 10.0.2.15/24 dev eth0; ip route add default via 10.0.2.2
r() { echo "RESULT $* [$(cut -d' ' -f1 /proc/uptime)s]"; }
ok() { n=$1; shift; if "$@" >/tmp/ok.out 2>&1; then r "ok $n"; else r "FAIL $n: $(tail -3 /tmp/ok.out | tr '\n' ' ')"; fi; }
# ok_within NAME SECONDS CMD...: ok once CMD succeeds, tried every 0.1 s
ok_within() {
  n=$1 t=$2; shift 2; i=0
  until "$@" >/dev/null 2>&1 || [ $i -ge $((t * 10)) ]; do sleep 0.1; i=$((i + 1)); done
  ok "$n" "$@"
}
r "booted $(uname -r)"
. /test.sh
r done
sync
poweroff -f
INIT
  chmod +x "$R/init"
  (cd "$R" && find . | cpio -o -H newc 2>/dev/null | gzip -1) >"$2"
}

_vmlinux() {  # uncompressed kernel for a fast PVH boot
  local K img out
  K=$(ls "$KROOT/lib/modules" | sort -V | tail -1)
  img="$KROOT/boot/vmlinuz-$K"
  out="$KROOT/vmlinux-$K"
  if [ ! -s "$out" ]; then
    python3 - "$img" >"$out.tmp" <<'PY'
import lzma, sys
d = open(sys.argv[1], "rb").read()
i = d.find(b"\xfd7zXZ\0")
sys.stdout.buffer.write(lzma.LZMADecompressor().decompress(d[i:]))
PY
    mv "$out.tmp" "$out"
  fi
  echo "$out"
}

# start_guest SCRIPT: boots the guest in the background (QEMU_PID);
# finish_guest waits for it and checks its results; run_guest does both.
start_guest() {  # script
  _build_initramfs "$1" "$T/initrd.gz"
  local kernel
  kernel=$(_vmlinux)
  : >"$T/console.log"
  # TCG by default: this machine's /dev/kvm does not run guests.
  timeout "${VM_TIMEOUT:-300}" qemu-system-x86_64 -accel "${NBDR_VM_ACCEL:-tcg}" -m 768 -smp 2 \
    -nographic -no-reboot -kernel "$kernel" -initrd "$T/initrd.gz" \
    -append "console=ttyS0 quiet panic=-1" \
    -netdev user,id=n0 -device virtio-net-pci,netdev=n0,romfile= >"$T/console.log" 2>&1 &
  QEMU_PID=$!
  cleanup "kill $QEMU_PID 2>/dev/null"
}

# wait_guest_line PATTERN [SECONDS]: waits until the guest printed it.
wait_guest_line() {
  local i
  for i in $(seq 1 $((${2:-120} * 10))); do
    grep -aq "$1" "$T/console.log" && return 0
    kill -0 "$QEMU_PID" 2>/dev/null || break
    sleep 0.1
  done
  tail -20 "$T/console.log"
  fail "guest never printed '$1'"
}

finish_guest() {
  local rc=0
  wait "$QEMU_PID" || rc=$?
  grep -a '^RESULT' "$T/console.log" | tr -d '\r' >"$T/results" || true
  cat "$T/results"
  [ $rc -eq 0 ] || { tail -30 "$T/console.log"; fail "qemu exited with status $rc (124 = guest hung)"; }
  grep -q '^RESULT done' "$T/results" || { tail -30 "$T/console.log"; fail "guest did not finish"; }
  if grep -q '^RESULT FAIL' "$T/results"; then fail "guest reported failures"; fi
  return 0
}

run_guest() {  # script
  start_guest "$1"
  finish_guest
}
