#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
# Test that a mapping belongs to the client host that made it: a map's
# confirmation needs the token its NBDR_MAP got (a map that outlived the
# mapping timeout cannot confirm, or undo, a later client's), a dead
# mapping is revived only by its own host on its own device, an unmap
# meant for one host's device leaves another's record alone, the client is
# persisted and shown, and a caller of the old protocol version is told.
source "$(dirname "$0")/functions.sh"
requires python3

# map_token CLIENT KEY: NBDR_MAP of file/KEY as CLIENT; prints its token.
map_token() {
  rpc_call 5 file "$2" "$1" >"$T/map.out"
  grep -q "^status 0 " "$T/map.out" || { cat "$T/map.out"; fail "map of $2 by $1"; }
  sed -n 's/^token //p' "$T/map.out"
}
# expect_rpc STATUS PATTERN ARGS...: rpc_call ARGS must answer STATUS with
# a message matching PATTERN (grep -E).
expect_rpc() {
  local want=$1 pattern=$2
  shift 2
  rpc_call "$@" >"$T/rpc.out"
  grep -Eq "^status $want .*$pattern" "$T/rpc.out" ||
    { cat "$T/rpc.out"; fail "rpc_call $* answered otherwise than $want /$pattern/"; }
}

start_runner --mapping-timeout 2
cli file create x.img size 1M >/dev/null

tok=$(map_token host-a x.img)
expect_rpc 16 "being mapped by host-a .*token" 6 file x.img /dev/nbd5 host-a "u64:$((tok + 1))"
expect_rpc 16 "being mapped by host-a" 6 file x.img /dev/nbd5 host-a u64:0
expect_rpc 0 "mapped on /dev/nbd5" 6 file x.img /dev/nbd5 host-a "u64:$tok"
cli --json file info x.img >"$T/info.json"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert (d["status"], d["device"], d["client"]) == ("mapped", "/dev/nbd5", "host-a"), d' "$T/info.json" ||
  fail "info does not show the mapping's client"
cli file info x.img | grep -q "^client: *host-a$" || fail "info text does not show the client"
cli file list | grep -q "x.img .*mapped .*/dev/nbd5 .*host-a$" || fail "list does not show the client"
grep -q '"client": "host-a"' "$T/state/saveconfig.json" || fail "client not persisted"
pass "a map is confirmed only with its own token; the client is shown and persisted"

# The unmap of one host's device leaves another host's record alone.
expect_rpc 16 "mapped on /dev/nbd5 of host-a, not on /dev/nbd5 of host-b" \
  7 file x.img /dev/nbd5 host-b u64:0
expect_rpc 16 "not on /dev/nbd6 of host-a" 7 file x.img /dev/nbd6 host-a u64:0
expect_rpc 16 "by another map" 7 file x.img "" "" u64:12345
expect_rpc 0 "unmapped" 7 file x.img /dev/nbd5 host-a u64:0
pass "an unmap for another device, host or map leaves the record; the owner's clears it"

# host-a's map outlives the mapping timeout; host-b maps meanwhile.
tok_a=$(map_token host-a x.img)
sleep 3
tok_b=$(map_token host-b x.img)
grep -q "mapping not confirmed within 2 s" "$T/log/nbd-runner.log" || fail "host-a's map did not expire"
expect_rpc 16 "being mapped by host-b" 6 file x.img /dev/nbd5 host-a "u64:$tok_a"
expect_rpc 16 "by another map; left as it is" 7 file x.img "" "" "u64:$tok_a"
cli --json file info x.img | grep -q '"status": "mapping"' || fail "host-b's mapping was dropped"
expect_rpc 0 "mapped on /dev/nbd7" 6 file x.img /dev/nbd7 host-b "u64:$tok_b"
pass "a map that outlived its timeout neither confirms nor undoes a later client's"

# After a restart the mapping is dead; only its host, on its device,
# revives it.
stop_runner
start_runner --mapping-timeout 2
cli --json file info x.img | grep -q '"status": "dead"' || fail "not dead after a restart"
grep -q "was mapped on /dev/nbd7 of host-b when the runner stopped" "$T/log/nbd-runner.log" ||
  fail "the restart's log line does not name the client"
expect_rpc 16 "dead on /dev/nbd7 of host-b, not on /dev/nbd7 of host-a" \
  6 file x.img /dev/nbd7 host-a u64:0
expect_rpc 16 "not on /dev/nbd8 of host-b" 6 file x.img /dev/nbd8 host-b u64:0
expect_rpc 16 "is dead on /dev/nbd7 of host-b: its client may still hold it" 5 file x.img host-a
expect_rpc 0 "mapped on /dev/nbd7" 6 file x.img /dev/nbd7 host-b u64:0
pass "a dead mapping is revived by its own host and device only"

expect_rpc 22 "control characters" 5 file x.img "$(printf 'host\nx')"
expect_rpc 22 "did not name its host" 5 file x.img ""
expect_rpc 22 "did not name its host" 6 file x.img /dev/nbd7 "" u64:0
pass "a client identity that is empty or has control characters is refused"

# A map whose confirmation took effect but whose reply was lost undoes
# itself by its token; one whose mapping timed out finds nothing to undo.
expect_rpc 0 "unmapped" 7 file x.img /dev/nbd7 host-b u64:0
tok=$(map_token host-a x.img)
expect_rpc 0 "mapped on /dev/nbd3" 6 file x.img /dev/nbd3 host-a "u64:$tok"
expect_rpc 0 "unmapped" 7 file x.img "" "" "u64:$tok"
tok=$(map_token host-a x.img)
sleep 3
cli file info x.img >/dev/null  # the expiry happens on the next registry change or lookup
expect_rpc 22 "is not mapped" 7 file x.img "" "" "u64:$tok"
pass "a confirmed map undoes itself by its token; an expired one finds nothing to undo"

# A caller of protocol version 1 (an nbd-cli of an older release).
python3 - "$RPC_PORT" <<'PY' || fail "a version 1 call was not told the versions"
import os, socket, struct, sys
sys.path.insert(0, os.environ["NBDR_SRC"] + "/tests/integration")
from onc_rpc import PROGRAM
body = struct.pack(">IIIIII", 7, 0, 2, PROGRAM, 1, 3) + b"\0" * 16 + b"\0" * 8
with socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10) as s:
    s.sendall(struct.pack(">I", 0x80000000 | len(body)) + body)
    n = struct.unpack(">I", s.recv(4, socket.MSG_WAITALL))[0] & 0x7FFFFFFF
    data = s.recv(n, socket.MSG_WAITALL)
xid, mtype, stat, _flavor, vlen = struct.unpack(">IIIII", data[:20])
accept, low, high = struct.unpack(">III", data[20 + vlen:32 + vlen])
print("version 1 call: accept status %d, versions %d-%d" % (accept, low, high))
sys.exit(0 if (xid, mtype, stat, accept, low, high) == (7, 1, 0, 2, 4, 4) else 1)
PY
grep -q "speaks control protocol version 1, this runner 4: refused" "$T/log/nbd-runner.log" ||
  fail "no log line for the version 1 caller"
pass "a version 1 caller is told the runner speaks version 4, and it is logged"
