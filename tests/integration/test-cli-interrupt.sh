#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
# nbd-cli against a hung runner (issue 27, reproduction 7): libtirpc
# blocks every signal while a call waits, and the call waited 120 s, so
# Ctrl-C and SIGTERM did nothing. Now SIGINT or SIGTERM ends a waiting
# call within a second (exit 3, saying whether the change may have
# happened), --timeout S bounds each call, and nbd-clid stops at once on
# SIGTERM even while its call to a hung runner waits.
source "$(dirname "$0")/functions.sh"
requires python3

start_runner
cli file create a.img size 1M >/dev/null
kill -STOP "$RUNNER_PID"
cleanup 'kill -CONT "$RUNNER_PID" 2>/dev/null'

# interrupt SIGNAL EXPECTED_PATTERN ARGS...: nbd-cli ARGS against the
# stopped runner gets SIGNAL after 1 s and must end within a second, with
# exit status 3 and a message matching the pattern.
interrupt() {
  python3 - "$CLI" "$@" <<'PY' || fail "nbd-cli did not end promptly on $1"
import re, signal, subprocess, sys, time
cli, signame, pattern, args = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
# A shell's background job starts with SIGINT ignored; a terminal's does not.
p = subprocess.Popen([cli] + args, stderr=subprocess.PIPE, text=True,
                     preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
time.sleep(1)
assert p.poll() is None, "nbd-cli ended before the signal: %r" % p.stderr.read()
t0 = time.monotonic()
p.send_signal(getattr(signal, signame))
try:
    rc = p.wait(timeout=5)
except subprocess.TimeoutExpired:
    p.kill()
    sys.exit("nbd-cli still waits 5 s after %s" % signame)
took, err = time.monotonic() - t0, p.stderr.read()
print("%s: exit %d after %.2f s: %s" % (signame, rc, took, err.strip()))
ok = rc == 3 and took < 1.0 and re.search(pattern, err)
sys.exit(0 if ok else 1)
PY
}

interrupt SIGINT "Interrupt while waiting: nbd-runner at .* did not answer create; it may have been carried out" \
  file create b.img size 1M host "$RPC"
interrupt SIGTERM "Terminated while waiting: nbd-runner at .* did not answer list; nothing was changed" \
  file list host "$RPC"
pass "SIGINT and SIGTERM end a call to a hung runner within a second, saying what may have happened"

start=$(date +%s)
expect_fail 3 "did not answer list within 2 s" "$CLI" --timeout 2 file list host "$RPC"
took=$(($(date +%s) - start))
[ "$took" -le 4 ] || fail "--timeout 2 took $took s"
expect_fail 2 "'--timeout' must be a number of seconds from 1 to 3600" "$CLI" --timeout 0 file list
pass "--timeout bounds a call; a bad value is refused"

# nbd-clid polls the stopped runner for a mapping of this host and waits
# in that call; SIGTERM must end it at once. Then, idle between passes of
# a long interval, it must stop at once too.
export NBD_CLI_STATE="$T/mappings.json"
printf '[{"device": "/dev/nbd0", "type": "file", "key": "a.img", "runner": "%s",
  "connections": 1, "timeout": 30, "dead_timeout": 0, "readonly": false}]\n' "$RPC" >"$NBD_CLI_STATE"
# clid_stops_on_sigterm WAIT ARGS...: nbd-clid ARGS, SIGTERM after WAIT s;
# it must be gone within a second.
clid_stops_on_sigterm() {
  local wait=$1 pid i
  shift
  "$NBDR_BUILD/sbin/nbd-clid" --foreground "$@" >"$T/clid.out" 2>&1 &
  pid=$!
  sleep "$wait"
  kill -0 "$pid" 2>/dev/null || { cat "$T/clid.out"; fail "nbd-clid ended early"; }
  kill -TERM "$pid"
  for i in $(seq 1 10); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$pid" 2>/dev/null && { kill -KILL "$pid"; fail "nbd-clid $* still runs 1 s after SIGTERM"; }
  wait "$pid" || true
}
clid_stops_on_sigterm 2.5 --interval 1 --timeout 60
grep -q "Terminated while waiting: nbd-runner at $RPC did not answer info" "$T/clid.out" ||
  { cat "$T/clid.out"; fail "nbd-clid did not say which call it left"; }
echo '[]' >"$NBD_CLI_STATE"
clid_stops_on_sigterm 1 --interval 60
pass "nbd-clid stops within a second on SIGTERM, in a call to a hung runner and between passes"

kill -CONT "$RUNNER_PID"
cli file list | grep -q '^a.img' || fail "the runner does not answer after SIGCONT"
pass "the runner answers again once resumed"
