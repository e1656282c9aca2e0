#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
# Test the systemd side: both unit files pass `systemd-analyze verify`
# (with this build's binaries and generated man pages), the runner speaks the
# Type=notify protocol (READY=1 once listening, RELOADING=1/READY=1 on
# SIGHUP, STOPPING=1 on SIGTERM, WATCHDOG=1 with a STATUS= of what it
# serves), ExecReload checks the configuration before the HUP so that a
# reload of a bad one fails, and SIGHUP re-reads the log level and
# names the changed options that need a restart; the logrotate snippet
# rotates for real and the bash completion offers the runner's keys.
source "$(dirname "$0")/functions.sh"
requires systemd-analyze python3

mkdir -p "$T/units"
for u in nbd-runner nbd-clid; do
  sed "s|/usr/sbin/|$NBDR_BUILD/sbin/|" "$NBDR_SRC/systemd/$u.service" >"$T/units/$u.service"
done
MANPATH="$NBDR_BUILD/share/man" systemd-analyze verify "$T/units/nbd-runner.service" "$T/units/nbd-clid.service" \
  >"$T/verify" 2>&1 || { cat "$T/verify"; fail "systemd-analyze verify"; }
grep -q '^Type=notify' "$T/units/nbd-runner.service" || fail "nbd-runner.service is not Type=notify"
pass "systemd-analyze verify passes on nbd-runner.service and nbd-clid.service"

# A notify socket that records every datagram, one per line.
python3 - "$T/notify.sock" "$T/notify.log" >/dev/null 2>&1 <<'PY' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
with open(sys.argv[2], "a", buffering=1) as out:
    while True:
        out.write(s.recv(4096).decode().replace("\n", " ") + "\n")
PY
LISTENER=$!  # (its stdout is ours: killed by cleanup, never left behind)
cleanup "kill $LISTENER 2>/dev/null"
for _ in $(seq 50); do [ -S "$T/notify.sock" ] && break; sleep 0.1; done

printf 'log-level = info\nmapping-timeout = 60\n' >"$T/runner.conf"
NOTIFY_SOCKET="$T/notify.sock" WATCHDOG_USEC=1000000 start_runner --config "$T/runner.conf"
for _ in $(seq 50); do grep -q 'READY=1' "$T/notify.log" 2>/dev/null && break; sleep 0.1; done
grep -q 'READY=1 STATUS=serving NBD on 127.0.0.1' "$T/notify.log" || { cat "$T/notify.log"; fail "no READY=1"; }
pass "READY=1 (with a STATUS line) once both listeners are up"

# The watchdog (WatchdogSec in the unit; here WATCHDOG_USEC, 1 s): WATCHDOG=1
# every half of it, with a STATUS= of what the runner serves.
grep -q '^WatchdogSec=' "$T/units/nbd-runner.service" || fail "nbd-runner.service has no WatchdogSec"
cli file create wd.img size 1M >/dev/null
for _ in $(seq 50); do grep -q 'WATCHDOG=1 STATUS=serving 1 backstores, 0 open, 0 NBD connections' "$T/notify.log" && break; sleep 0.1; done
grep -q 'WATCHDOG=1 STATUS=serving 1 backstores, 0 open, 0 NBD connections' "$T/notify.log" ||
  { cat "$T/notify.log"; fail "no WATCHDOG=1 with the serving status"; }
cli file delete wd.img >/dev/null
pass "WATCHDOG=1 every half watchdog interval, with STATUS=serving N backstores, open exports, NBD connections"

# SIGHUP: the new log level applies at once; options that need a restart
# (the NBD connection limit, a handler option) are named.
printf 'log-level = debug\nmapping-timeout = 30\nmax-connections = 16\ngluster-timeout = 7\n' >"$T/runner.conf"
kill -HUP "$RUNNER_PID"
for _ in $(seq 50); do grep -q 'log level now debug' "$T/runner.out" && break; sleep 0.1; done
grep -q "SIGHUP: log level now debug" "$T/runner.out" || { cat "$T/runner.out"; fail "log level not reloaded"; }
grep -q 'changed options take effect after a restart: max-connections, gluster-timeout' "$T/runner.out" ||
  { cat "$T/runner.out"; fail "changed max-connections and gluster-timeout were not named"; }
cli file list >/dev/null  # the running port is unchanged
grep -q 'DEBUG.*list from' "$T/runner.out" || fail "debug lines after the reload"
grep -q 'RELOADING=1' "$T/notify.log" || { cat "$T/notify.log"; fail "no RELOADING=1"; }
grep -q 'SIGHUP: mapping timeout now 30 s' "$T/runner.out" || fail "new mapping timeout not logged"
pass "SIGHUP re-reads the log level and mapping timeout, names options that need a restart, notifies RELOADING/READY"

# An option no one knows is refused at SIGHUP, as it would be at the next
# start, and nothing of that file is applied.
printf 'log-level = warning
no-such-option = 1
' >"$T/runner.conf"
kill -HUP "$RUNNER_PID"
for _ in $(seq 50); do grep -q "unknown option 'no-such-option'" "$T/runner.out" && break; sleep 0.1; done
grep -q "configuration not reloaded, the running one stays: .*unknown option 'no-such-option'" \
  "$T/runner.out" || { cat "$T/runner.out"; fail "an unknown option on SIGHUP was not refused"; }
grep -q "log level now warning" "$T/runner.out" && fail "a refused configuration was applied"

# A value only the handler can judge is checked too (--check-config in a
# child), before any of the file applies.
printf 'log-level = warning\nfile-io = bogus\n' >"$T/runner.conf"
kill -HUP "$RUNNER_PID"
for _ in $(seq 100); do grep -q "not reloaded.*file-io" "$T/runner.out" && break; sleep 0.1; done
grep -q "configuration not reloaded, the running one stays: refusing to start: handler 'file': file-io: 'bogus'" \
  "$T/runner.out" || { cat "$T/runner.out"; fail "a handler's refusal on SIGHUP was not reported"; }
grep -q "log level now warning" "$T/runner.out" && fail "a refused configuration was applied"
cli file list >/dev/null || fail "the runner stopped serving after a refused reload"
pass "SIGHUP applies nothing of a configuration a start would refuse (unknown option, handler value)"

printf 'log-level = loud\n' >"$T/runner.conf"
kill -HUP "$RUNNER_PID"
for _ in $(seq 50); do grep -q 'configuration not reloaded.*log-level' "$T/runner.out" && break; sleep 0.1; done
grep -q "configuration not reloaded, the running one stays: .*log-level" "$T/runner.out" ||
  { cat "$T/runner.out"; fail "a bad config on SIGHUP was not reported"; }
kill -0 "$RUNNER_PID" || fail "the runner died on a bad config"
pass "a broken configuration on SIGHUP is reported and the running one stays"

# The logrotate snippet, pointed at this runner: a real rotation, after
# which the runner writes to a new nbd-runner.log.
if command -v logrotate >/dev/null; then
  sed -e "s|/var/log/nbd-runner|$T/log|g" -e "s|systemctl kill .*nbd-runner.service|kill -HUP $RUNNER_PID|" \
    "$NBDR_SRC/etc/logrotate.d/nbd-runner" >"$T/logrotate.conf"
  logrotate -f -s "$T/logrotate.state" "$T/logrotate.conf" || fail "logrotate"
  [ -s "$T/log/nbd-runner.log.1" ] || fail "nbd-runner.log was not rotated"
  for _ in $(seq 50); do grep -q 'log file reopened' "$T/log/nbd-runner.log" 2>/dev/null && break; sleep 0.1; done
  grep -q 'log file reopened' "$T/log/nbd-runner.log" || fail "the runner did not reopen its log after rotation"
  pass "logrotate rotates nbd-runner.log and the runner reopens it"
fi

# Bash completion: subcommands, and keys from the runner's list.
cli file create comp/a.img size 1M >/dev/null
COMPLETION_OUT=$(PATH="$NBDR_BUILD/sbin:$PATH" bash -c '
  source "$1"
  COMP_WORDS=(nbd-cli file de); COMP_CWORD=2; _nbd_cli; echo "verbs: ${COMPREPLY[*]}"
  COMP_WORDS=(nbd-cli file delete host "$2" ""); COMP_CWORD=5; _nbd_cli; echo "keys: ${COMPREPLY[*]}"
' _ "$NBDR_SRC/etc/bash-completion/nbd-cli" "$RPC")
echo "$COMPLETION_OUT"
grep -q '^verbs: delete$' <<<"$COMPLETION_OUT" || fail "completion of subcommands"
grep -q '^keys: .*comp/a.img' <<<"$COMPLETION_OUT" || fail "completion of keys"
pass "bash completion offers subcommands and the runner's keys"

# systemctl reload runs the unit's ExecReload lines in order: the first
# checks the configuration (as a start would), so a bad one fails the
# reload itself, and the HUP is never sent (issue 30: before, a reload of a
# bad configuration "succeeded" and was only refused in the log).
mapfile -t RELOAD < <(sed -n 's/^ExecReload=//p' "$T/units/nbd-runner.service")
[ "${#RELOAD[@]}" = 2 ] && [[ ${RELOAD[1]} == *"kill -HUP"* ]] ||
  fail "ExecReload is not a check and then the HUP: ${RELOAD[*]}"
grep -q -- "--config /etc/nbd-runner/nbd-runner.conf" <<<"${RELOAD[0]}" &&
  grep -q -- "--config /etc/nbd-runner/nbd-runner.conf" <(grep '^ExecStart=' "$T/units/nbd-runner.service") ||
  fail "ExecReload does not check the configuration ExecStart runs with"
printf 'state-dir = %s\nlog-dir = %s\nfile-dir = %s\nhandler-dir = %s\n' "$T/state" "$T/log" "$T/files" \
  "$NBDR_BUILD/lib/nbd-runner" >"$T/reload.conf"
check=${RELOAD[0]//\/etc\/nbd-runner\/nbd-runner.conf/$T/reload.conf}
$check >"$T/reload.out" 2>&1 || { cat "$T/reload.out"; fail "the reload's check refused a good configuration"; }
printf 'file-io = bogus\n' >>"$T/reload.conf"
if $check >"$T/reload.out" 2>&1; then fail "the reload's check passed a bad configuration"; fi
grep -q "configuration refused: .*file-io" "$T/reload.out" || { cat "$T/reload.out"; fail "the reload's check did not say why"; }
pass "ExecReload checks the configuration first: a bad one fails the reload, saying why"

stop_runner
grep -q 'STOPPING=1' "$T/notify.log" || { cat "$T/notify.log"; fail "no STOPPING=1"; }
pass "STOPPING=1 on SIGTERM"
