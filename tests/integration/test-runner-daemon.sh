#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
# Test nbd-runner started without --foreground, as an operator starts it by
# hand: it returns 0 only once it serves (nbd-cli works at once), the
# handlers' I/O threads work in the detached process (flush, trim and reads
# that the file handler's thread pool does), the lock file names the
# detached process, a relative --log-dir still works at SIGHUP, a start that
# cannot bind its port exits non-zero with the reason on the terminal, and
# SIGTERM stops it cleanly.
source "$(dirname "$0")/functions.sh"
requires qemu-io nbdsh

mkdir -p "$T/state" "$T/files" "$T/other"
cd "$T"
rc=0
timeout 60 "$RUNNER" --rpc-host 127.0.0.1 --rpc-port 0 --io-host 127.0.0.1 --io-port 0 \
  --state-dir "$T/state" --log-dir log --file-dir "$T/files" \
  --handler-dir "$NBDR_BUILD/lib/nbd-runner" >"$T/start.out" 2>&1 || rc=$?
cat "$T/start.out"
[ $rc -eq 0 ] || fail "nbd-runner without --foreground exited $rc"
DAEMON=$(tr -d '\n' <"$T/state/nbd-runner.lock")
[ -n "$DAEMON" ] && kill -0 "$DAEMON" || fail "the lock file does not name a running process ('$DAEMON')"
cleanup "kill -9 $DAEMON 2>/dev/null"
[ "$(ps -o sid= -p "$DAEMON" | tr -d ' ')" = "$DAEMON" ] || fail "the daemon did not start its own session"
pass "nbd-runner returned 0 and left a detached daemon (pid $DAEMON, named in the lock file)"

LOG="$T/log/nbd-runner.log"
RPC_PORT=$(sed -n 's/.*control RPC listening on .* (port \([0-9]*\)).*/\1/p' "$LOG" | tail -1)
IO_PORT=$(sed -n 's/.*NBD listening on .* (port \([0-9]*\)).*/\1/p' "$LOG" | tail -1)
RPC="127.0.0.1:$RPC_PORT"
NBD="nbd://127.0.0.1:$IO_PORT"
cli file create d.img size 16M >/dev/null || fail "nbd-cli create right after the start returned"
timeout 60 qemu-io -f raw -c 'write -P 0x3a 0 4M' -c 'flush' -c 'discard 1M 1M' -c 'write -f -P 0x3b 3M 64k' \
  -c 'read -P 0x3a 0 1M' -c 'read -P 0 1M 1M' -c 'read -P 0x3b 3M 64k' "$NBD/file/d.img" >"$T/qio" 2>&1 ||
  { cat "$T/qio"; fail "I/O on the detached runner failed or hung"; }
grep -q failed "$T/qio" && { cat "$T/qio"; fail "I/O on the detached runner failed"; }
pass "the detached runner serves writes, flush, trim, FUA and reads"

mv "$LOG" "$T/log/rotated.log"
kill -HUP "$DAEMON"
for _ in $(seq 100); do grep -qs 'log file reopened' "$LOG" && break; sleep 0.1; done
grep -qs 'log file reopened' "$LOG" || fail "SIGHUP did not reopen the relative --log-dir's log"
pass "SIGHUP reopens the log of a relative --log-dir"

rc=0
timeout 60 "$RUNNER" --rpc-host 127.0.0.1 --rpc-port 0 --io-host 127.0.0.1 --io-port "$IO_PORT" \
  --state-dir "$T/other" --log-dir "$T/other" --file-dir "$T/files" \
  --handler-dir "$NBDR_BUILD/lib/nbd-runner" >"$T/second.out" 2>&1 || rc=$?
cat "$T/second.out"
[ $rc -ne 0 ] || fail "a runner that could not bind its NBD port exited 0"
[ $rc -ne 124 ] || fail "a runner that could not bind its NBD port hung"
grep -q "Address already in use" "$T/second.out" || fail "the bind failure was not printed"
pass "a start that cannot bind its port exits $rc and says why"

kill -TERM "$DAEMON"
for _ in $(seq 300); do kill -0 "$DAEMON" 2>/dev/null || break; sleep 0.1; done
kill -0 "$DAEMON" 2>/dev/null && fail "the daemon did not stop within 30 s of SIGTERM"
grep -q 'stopped cleanly' "$LOG" || fail "no 'stopped cleanly' in the log"
pass "SIGTERM stops the detached runner cleanly"
