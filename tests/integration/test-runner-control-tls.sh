#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
# The control port over TLS (issue 26), as RFC 9289 specifies for ONC RPC:
# a NULL call with the AUTH_TLS credential is answered with the STARTTLS
# verifier, then TLS on the same connection. With tls = require, every
# other call before TLS is rejected (AUTH_ERROR, AUTH_TOOWEAK) and garbage
# closes the connection; nbd-cli with --tls-psk or --tls-certificates
# speaks TLS there, and the audit trail names the identity TLS proved. A
# wrong key is refused; a runner without TLS says it offers none; with
# tls = on plain callers keep working.
source "$(dirname "$0")/functions.sh"
source "$(dirname "$0")/tls-credentials.sh"
requires psktool certtool python3

make_psk "$T/keys.psk" alice
make_psk "$T/wrong.psk" alice
make_pki "$T/pki"
PSK=(--tls-psk "$T/keys.psk")
start_runner --tls require --tls-psk "$T/keys.psk" --tls-certificates "$T/pki/server" --tls-verify-peer \
  --control-admins "psk:alice,x509:CN=client1,O=nbd-runner tests"

python3 - "$RPC_PORT" <<'PY' || fail "the RFC 9289 probe or the refusal of plain calls"
import os, socket, struct, sys
sys.path.insert(0, os.environ["NBDR_SRC"] + "/tests/integration")
from onc_rpc import PROGRAM as PROG, VERSION as VERS
port = int(sys.argv[1])

def call(s, xid, proc, cred_flavor):
    body = struct.pack(">IIIIIIIIII", xid, 0, 2, PROG, VERS, proc, cred_flavor, 0, 0, 0)
    s.sendall(struct.pack(">I", 0x80000000 | len(body)) + body)
    n = struct.unpack(">I", s.recv(4, socket.MSG_WAITALL))[0] & 0x7FFFFFFF
    return s.recv(n, socket.MSG_WAITALL)

with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
    r = call(s, 7, 0, 7)  # NULL with AUTH_TLS
    xid, mtype, stat, vflavor, vlen = struct.unpack(">IIIII", r[:20])
    assert (xid, mtype, stat, vflavor, vlen) == (7, 1, 0, 0, 8), r
    assert r[20:28] == b"STARTTLS" and struct.unpack(">I", r[28:32])[0] == 0, r
with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
    # Every procedure but NULL, plain: MSG_DENIED, AUTH_ERROR, AUTH_TOOWEAK.
    for proc in range(1, 14):
        r = call(s, 100 + proc, proc, 0)
        assert struct.unpack(">IIIII", r[:20]) == (100 + proc, 1, 1, 1, 5), (proc, r)
    r = call(s, 8, 3, 0)  # LIST again: the connection still answers
    assert struct.unpack(">IIIII", r[:20]) == (8, 1, 1, 1, 5), r
    r = call(s, 9, 0, 0)  # a plain NULL still answers (a liveness probe)
    assert struct.unpack(">III", r[:12]) == (9, 1, 0), r
with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
    try:  # closed with the garbage unread: a reset, or an end of stream
        s.sendall(b"\x16\x03\x01 this is not RPC at all" * 4)
        got = s.recv(100)
    except ConnectionResetError:
        got = b""
    assert got == b"", "garbage before TLS did not close the connection"
PY
pass "the AUTH_TLS probe gets the STARTTLS verifier; plain calls get AUTH_TOOWEAK; garbage closes"

expect_fail 1 "requires TLS on its control port: give --tls-psk FILE or --tls-certificates DIR" \
  "$CLI" file list host "$RPC"
"$CLI" "${PSK[@]}" file create a.img size 1M host "$RPC" >/dev/null || fail "create over TLS (PSK)"
"$CLI" "${PSK[@]}" file list host "$RPC" | grep -q '^a.img' || fail "list over TLS (PSK)"
grep -Eq '\[audit\] create type "file" key "a.img" size 1048576 by "psk:alice" from 127\.0\.0\.1:[0-9]+: ok' \
  "$T/log/nbd-runner.log" || fail "the audit line lacks the PSK identity"
"$CLI" --tls-certificates "$T/pki/client1" file delete a.img host "$RPC" >/dev/null ||
  fail "delete over TLS (X.509)"
grep -Eq '\[audit\] delete type "file" key "a.img" by "x509:CN=client1,O=nbd-runner tests" from .*: ok' \
  "$T/log/nbd-runner.log" || fail "the audit line lacks the certificate's DN"
grep -Eq '\[rpc\] 127\.0\.0\.1:[0-9]+: TLS \(TLS1\.3\).*client psk:alice' "$T/log/nbd-runner.log" ||
  fail "the control connection's TLS not logged"
pass "nbd-cli speaks TLS on the control port with a PSK and with a certificate; audited by identity"

expect_fail 1 "did not accept this client's PSK identity alice" \
  "$CLI" --tls-psk "$T/wrong.psk" file list host "$RPC"
expect_fail 1 "ended the TLS session .*did not accept|did not accept this client" "$CLI" --tls-certificates "$T/pki/stranger" file list host "$RPC"
grep -q "\[rpc\] .*TLS handshake failed" "$T/log/nbd-runner.log" || fail "refused handshakes not logged"
stop_runner
pass "a wrong key and a certificate of another CA are refused, and logged"

start_runner
expect_fail 1 "does not offer TLS on its control port" "$CLI" "${PSK[@]}" file list host "$RPC"
stop_runner
start_runner --tls on --tls-psk "$T/keys.psk"
"$CLI" file list host "$RPC" >/dev/null || fail "a plain call with tls = on"
"$CLI" "${PSK[@]}" file list host "$RPC" >/dev/null || fail "a TLS call with tls = on"
pass "without TLS the runner says it offers none; with tls = on plain and TLS callers both work"
