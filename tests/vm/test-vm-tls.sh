#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
# Kernel mapping over TLS (issue 25), in the qemu guest against a runner
# with tls = require: nbd-cli map does the TLS handshake and moves the
# keys into the socket (kernel TLS, /proc/net/tls_stat counts it), so the
# kernel's nbd driver reads and writes through TLS with no process
# relaying. With a PSK and with an X.509 client certificate: map, mkfs,
# mount, write, unmap, remap, fsck, checksums. Refused with a clear
# message: no credentials, a wrong key, a certificate of another CA.
# nbd-client (its own TLS) maps with certificates too. Then the runner is
# killed with SIGKILL during writes and nbd-clid brings the TLS mapping
# back with the credentials it kept (mappings.json, mode 0600).
source "$(dirname "$0")/../integration/functions.sh"
source "$(dirname "$0")/../integration/tls-credentials.sh"
source "$(dirname "$0")/vm-functions.sh"
requires psktool certtool

make_psk "$T/keys.psk" alice
make_psk "$T/wrong.psk" alice
make_pki "$T/pki"
G="$T/guest-files"
mkdir -p "$G/wrongca"
cp -p "$T/keys.psk" "$T/wrong.psk" "$G/"
cp -rp "$T/pki/client1" "$T/pki/stranger" "$G/"
# client1's certificate, but trusting another CA than the runner's.
cp -p "$T/pki/client1/client-cert.pem" "$T/pki/client1/client-key.pem" "$G/wrongca/"
cp "$T/pki/work/other-ca-cert.pem" "$G/wrongca/ca-cert.pem"
VM_FILES="$G/keys.psk $G/wrong.psk $G/client1 $G/stranger $G/wrongca"
RUNNER_TLS=(--tls require --tls-psk "$T/keys.psk" --tls-certificates "$T/pki/server"
  --tls-verify-peer)

start_runner "${RUNNER_TLS[@]}"
cli file create tls.img size 128M >/dev/null
cli file create cert.img size 64M >/dev/null
H="host 10.0.2.2:$RPC_PORT"
PSK="--tls-psk /files/keys.psk"
CERT="--tls-certificates /files/client1"
NBD_CLIENT_TLS="-certfile /files/client1/client-cert.pem -keyfile /files/client1/client-key.pem \
-cacertfile /files/client1/ca-cert.pem -tlshostname 10.0.2.2"
cat >"$T/guest.sh" <<GUEST
# ktls N: N sockets of this host are in kernel TLS now.
ktls() { grep -Eq "TlsCurrTxSw[[:space:]]+\$1\\\$" /proc/net/tls_stat && grep -Eq "TlsCurrRxSw[[:space:]]+\$1\\\$" /proc/net/tls_stat; }
# refused NAME PATTERN ARGS...: nbd-cli ARGS fails, saying PATTERN.
refused() { n=\$1 p=\$2; shift 2; if nbd-cli "\$@" >/tmp/out 2>/tmp/err; then r "FAIL \$n: mapped \$(cat /tmp/out)"; nbd-cli file unmap "\$(cat /tmp/out)" $H; elif grep -q "\$p" /tmp/err; then r "ok \$n"; else r "FAIL \$n: \$(cat /tmp/err)"; fi; }
refused plain-refused 'requires TLS' file map tls.img $H
refused wrong-key-refused 'did not accept' --tls-psk /files/wrong.psk file map tls.img $H
refused unknown-user-refused 'bob: not in' $PSK --tls-username bob file map tls.img $H
refused other-ca-client-refused 'did not accept' --tls-certificates /files/stranger file map cert.img $H
refused other-ca-server-refused 'not trusted' --tls-certificates /files/wrongca file map cert.img $H
ok no-ktls-left ktls 0

# PSK: the full cycle through kernel TLS.
nbd-clid --foreground --interval 1 >/tmp/clid.log 2>&1 &
dev=\$(nbd-cli $PSK file map tls.img dead-timeout 120 timeout 10 $H 2>/tmp/err) && r "ok map-psk \$dev" || r "FAIL map-psk: \$(cat /tmp/err)"
ok ktls-in-use ktls 1
ok state-private sh -c "[ \\"\\\$(stat -c %a /var/lib/nbd-cli/mappings.json)\\" = 600 ]"
ok state-has-identity grep -Eq '"tls_psk_identity": *"alice"' /var/lib/nbd-cli/mappings.json
ok mkfs mkfs.ext4 -q -F \$dev
ok mount mount -t ext4 \$dev /mnt
for i in 1 2 3; do dd if=/dev/urandom of=/mnt/f\$i bs=64k count=\$((i * 16)) 2>/dev/null; done
(cd /mnt && sha256sum f1 f2 f3) >/tmp/sums
ok umount umount /mnt
ok unmap nbd-cli file unmap \$dev $H
ok ktls-closed ktls 0
dev=\$(nbd-cli $PSK file map tls.img dead-timeout 120 timeout 10 $H 2>/tmp/err) && r "ok remap-psk \$dev" || r "FAIL remap-psk: \$(cat /tmp/err)"
ok fsck e2fsck -f -n \$dev
ok mount-again mount -t ext4 \$dev /mnt
ok checksums sh -c "cd /mnt && sha256sum -c /tmp/sums"
ok umount-again umount /mnt

# X.509: nbd-cli with client1's certificate, then nbd-client (its own
# TLS, in user space) with the same certificate reads what it wrote.
cdev=\$(nbd-cli $CERT file map cert.img connections 2 $H 2>/tmp/err) && r "ok map-x509 \$cdev" || r "FAIL map-x509: \$(cat /tmp/err)"
ok ktls-x509 ktls 3
dd if=/dev/urandom of=/tmp/cpat bs=1M count=8 2>/dev/null
ok x509-write dd if=/tmp/cpat of=\$cdev bs=1M seek=4 oflag=direct conv=fsync
ok unmap-x509 nbd-cli file unmap \$cdev $H
ok nbd-client-x509 nbd-client 10.0.2.2 $IO_PORT /dev/nbd7 -N file/cert.img $NBD_CLIENT_TLS
ok nbd-client-reads sh -c "dd if=/dev/nbd7 bs=1M skip=4 count=8 iflag=direct 2>/dev/null | cmp - /tmp/cpat"
ok nbd-client-disconnect nbd-client -d /dev/nbd7

# The runner is killed during writes; nbd-clid reconnects with the
# credentials it kept.
dd if=/dev/urandom of=/tmp/pat bs=1M count=24 2>/dev/null
r "writing"
bad=0
for i in \$(seq 0 23); do
  dd if=/tmp/pat of=\$dev bs=1M skip=\$i seek=\$((i + 64)) count=1 oflag=direct conv=fsync 2>/tmp/dd.err || { bad=1; cat /tmp/dd.err; }
  [ \$i = 4 ] && r "past-4"
done
ok no-write-error [ \$bad = 0 ]
ok same-data sh -c "dd if=\$dev bs=1M skip=64 count=24 iflag=direct 2>/dev/null | cmp - /tmp/pat"
ok clid-reconnected grep -q 'reconnected' /tmp/clid.log
ok ktls-after-reconnect ktls 1
cat /tmp/clid.log | while read -r l; do r "clid: \$l"; done
ok fsck-after e2fsck -f -n \$dev
ok unmap-by-key nbd-cli file unmap tls.img $H
GUEST
start_guest "$T/guest.sh"
wait_guest_line 'RESULT past-4' 240
n=$(grep -c 'TLS handshake failed' "$T/runner.out" || true)
[ "$n" -ge 3 ] || { cat "$T/runner.out"; fail "the runner logged $n refused TLS handshakes, not 3"; }
kill_now
pass "runner killed with SIGKILL during writes to the TLS mapping"
sleep 2
start_runner --rpc-port "$RPC_PORT" --io-port "$IO_PORT" "${RUNNER_TLS[@]}"
finish_guest
pass "guest: TLS maps through kernel TLS (PSK and X.509), nbd-client with certificates, refusals, nbd-clid reconnects over TLS"
cli --json file info tls.img | grep -q '"status": "created"' || fail "runner state after unmap"
