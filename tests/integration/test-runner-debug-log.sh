#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
# --log-level debug shows each NBD connection's negotiation, one line per
# step with the connection number, client address and export: client
# flags, structured replies, LIST, meta contexts asked and given, what INFO
# and GO give (size, flags, block sizes), refusals with their NBD_REP_ERR
# name. At the default level none of that appears, but every served
# connection still logs one line with its client and export.
source "$(dirname "$0")/functions.sh"
requires nbdinfo qemu-io

start_runner --log-level debug
cli file create d.img size 16M >/dev/null
nbdinfo "$NBD/file/d.img" >/dev/null
nbdinfo --list "$NBD" >/dev/null
qemu-io -f raw -c 'read 0 4k' "$NBD/file/d.img" >/dev/null
nbdinfo "$NBD/file/missing.img" >/dev/null 2>&1 && fail "nbdinfo on a missing export succeeded"
LOG="$T/log/nbd-runner.log"
expect() {  # expect REGEX WHAT
  grep -Eq "$1" "$LOG" || { grep conn "$LOG"; fail "debug log lacks $2"; }
}
c='\[conn#[0-9]+ 127\.0\.0\.1:[0-9]+'
expect "DEBUG +$c\] client flags: fixed-newstyle no-zeroes" "the client flags"
expect "DEBUG +$c\] NBD_OPT_STRUCTURED_REPLY: structured replies on" "structured replies"
expect "DEBUG +$c\] NBD_OPT_LIST: 1 export\(s\) listed" "NBD_OPT_LIST"
expect "DEBUG +$c file/d.img\] NBD_OPT_INFO: size 16777216, flags [a-z -]*flush[a-z -]*, block sizes 512/4096/[0-9]+, structured replies" "what NBD_OPT_INFO gives"
expect "DEBUG +$c\] NBD_OPT_SET_META_CONTEXT file/d.img \[base:allocation\]: base:allocation \(context id 1\)" "the meta context chosen"
expect "DEBUG +$c file/d.img\] NBD_OPT_GO: size 16777216, .*structured replies, base:allocation" "what NBD_OPT_GO gives"
expect "DEBUG +$c\] NBD_OPT_GO refused \(NBD_REP_ERR_UNKNOWN\): no backstore file/missing.img" "the refusal of a missing export"
expect "DEBUG +$c file/d.img\] client sent NBD_CMD_DISC" "the disconnect"
pass "debug log shows flags, options, meta contexts, export sizes and flags, refusals per connection"
stop_runner

rm -rf "$T/log"
start_runner
qemu-io -f raw -c 'read 0 4k' "$NBD/file/d.img" >/dev/null
stop_runner
LOG="$T/log/nbd-runner.log"
! grep -q 'DEBUG' "$LOG" || fail "DEBUG lines at the default log level"
expect "INFO +$c file/d.img\] serving \(structured replies, base:allocation\)" "the served connection at info level"
pass "at the default level only the served connection is logged, with client and export"
