#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
# fio's nbd engine over TLS (issue 25): with tls = require and clients'
# certificates verified, fio writes random 4K blocks at queue depth 8 to
# an nbds:// URI and reads every one back verified (crc32c); the runner
# logs the certificate's subject. A client without a certificate gets
# nothing. libnbd takes a root client's certificates only from
# /etc/pki/libnbd, so fio runs as nobody with them in its own HOME, as
# bench/run-bench does.
source "$(dirname "$0")/functions.sh"
source "$(dirname "$0")/tls-credentials.sh"
requires fio setpriv certtool
fio --enghelp=nbd >/dev/null 2>&1 || skip "this fio has no nbd engine"

make_pki "$T/pki"
start_runner --tls require --tls-certificates "$T/pki/server" --tls-verify-peer
cli file create fio.img size 64M >/dev/null
chmod 755 "$T"
as_nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups env HOME="$1" "${@:2}"; }
mkdir -p "$T/home/.pki" "$T/nocert/.pki/libnbd"
cp -r "$T/pki/client1" "$T/home/.pki/libnbd"
cp "$T/pki/client1/ca-cert.pem" "$T/nocert/.pki/libnbd/"
chown -R 65534:65534 "$T/home" "$T/nocert"
URI="nbds://localhost:$IO_PORT/file/fio.img"
as_nobody "$T/home" fio --name=tls --ioengine=nbd --uri="$URI" --rw=randwrite --bs=4k --size=16M \
  --iodepth=8 --verify=crc32c --do_verify=1 --output="$T/home/fio.out" >/dev/null 2>&1 ||
  { cat "$T/home/fio.out" 2>/dev/null; tail -5 "$T/runner.out"; fail "fio over nbds:// with a certificate"; }
grep -q "err= 0" "$T/home/fio.out" || { cat "$T/home/fio.out"; fail "fio reported an error"; }
grep -q "client x509:CN=client1,O=nbd-runner tests" "$T/runner.out" ||
  fail "the runner did not log fio's certificate subject"
pass "fio (nbd engine) writes and verifies 16 MiB over nbds:// with a client certificate"
if as_nobody "$T/nocert" fio --name=none --ioengine=nbd --uri="$URI" --rw=read --bs=4k --size=1M \
  --output="$T/nocert/fio.out" >/dev/null 2>&1; then
  fail "fio without a client certificate read the export"
fi
grep -q "TLS handshake failed" "$T/runner.out" || fail "the refused handshake is not logged"
pass "fio without a client certificate is refused, and the refusal logged"
