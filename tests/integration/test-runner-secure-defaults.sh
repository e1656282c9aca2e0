#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
# Secure defaults (issue 26): both ports used to listen on every address,
# and disk images were created 0644 in 0755 directories with a 0644 log.
# Now a runner given no rpc-host/io-host listens on loopback only (both
# ports everywhere when TLS guards them), checked with ss; an exposed port without
# protection is named in a warning at start; backing files are 0600 in
# 0700 directories (file-mode changes both), the log 0640, the state and
# log directories 0750.
source "$(dirname "$0")/functions.sh"
source "$(dirname "$0")/tls-credentials.sh"
requires ss psktool

# listening PID: "ADDR:PORT" lines of the TCP sockets PID listens on.
listening() {
  ss -Hltnp | awk -v pid="pid=$1," 'index($0, pid) {print $4}' | sort
}
# bare_runner ARGS...: a runner with only the given address options.
bare_runner() {
  rm -rf "$T/b"
  mkdir -p "$T/b"
  : >"$T/bare.out"
  "$RUNNER" --foreground --rpc-port 0 --io-port 0 --state-dir "$T/b/state" --log-dir "$T/b/log" \
    --file-dir "$T/b/files" --handler-dir "$NBDR_BUILD/lib/nbd-runner" "$@" >"$T/bare.out" 2>&1 &
  BARE=$!
  local i
  for i in $(seq 1 600); do
    grep -q 'control RPC listening' "$T/bare.out" && break
    kill -0 "$BARE" 2>/dev/null || { cat "$T/bare.out"; fail "nbd-runner $* exited at start"; }
    sleep 0.1
  done
  sleep 0.2
  ADDRS=$(listening "$BARE" | sed 's/:[0-9]*$//' | sort -u | tr '\n' ' ')
}
stop_bare() { kill "$BARE"; wait "$BARE" 2>/dev/null || true; }
cleanup 'kill $BARE 2>/dev/null || true'

bare_runner
[ "$ADDRS" = "127.0.0.1 " ] || { listening "$BARE"; fail "default addresses: '$ADDRS', not loopback only"; }
[ "$(listening "$BARE" | wc -l)" = 2 ] || fail "not two listening sockets"
grep -q 'WARN' "$T/bare.out" && { cat "$T/bare.out"; fail "a warning on a loopback-only start"; }
[ "$(stat -c %a "$T/b/log/nbd-runner.log")" = 640 ] || fail "log file mode $(stat -c %a "$T/b/log/nbd-runner.log")"
[ "$(stat -c %a "$T/b/state")" = 750 ] || fail "state directory mode $(stat -c %a "$T/b/state")"
[ "$(stat -c %a "$T/b/log")" = 750 ] || fail "log directory mode $(stat -c %a "$T/b/log")"
stop_bare
pass "no rpc-host/io-host, no TLS: both ports on 127.0.0.1 only, no warning; log 0640, dirs 0750"

make_psk "$T/keys.psk" alice
bare_runner --tls require --tls-psk "$T/keys.psk"
RPC_ADDR=$(sed -n 's/.*control RPC listening on \(.*\) (port.*/\1/p' "$T/bare.out")
NBD_ADDR=$(sed -n 's/.*NBD listening on \(.*\) (port.*/\1/p' "$T/bare.out")
case "$RPC_ADDR $NBD_ADDR" in *127.0.0.1:*) fail "a port still on loopback with TLS required" ;; esac
[ "$(listening "$BARE" | grep -Ec '^(\*|\[::\]|0\.0\.0\.0):')" = 2 ] ||
  { listening "$BARE"; fail "the ports are not on every address"; }
grep -q 'WARN' "$T/bare.out" && { cat "$T/bare.out"; fail "a warning with TLS required"; }
stop_bare
pass "TLS required: both ports on every address, no warning"

bare_runner --io-host 0.0.0.0 --rpc-host 0.0.0.0
grep -q "WARN.*the NBD port listens on 0.0.0.0:[0-9]* without TLS: anyone who reaches it can read and overwrite every backstore" "$T/bare.out" ||
  { cat "$T/bare.out"; fail "no warning for an exposed NBD port"; }
grep -q "WARN.*the control port listens on 0.0.0.0:[0-9]* without TLS: anyone who reaches it can create" "$T/bare.out" ||
  { cat "$T/bare.out"; fail "no warning for an exposed control port"; }
stop_bare
pass "an explicit non-loopback address without TLS starts with a warning naming the risk, for each port"

# Backing files and the directories made for them.
start_runner
cli file create d/e/a.img size 1M >/dev/null
[ "$(stat -c %a "$T/files/d/e/a.img")" = 600 ] || fail "backing file mode $(stat -c %a "$T/files/d/e/a.img")"
[ "$(stat -c %a "$T/files/d")" = 700 ] && [ "$(stat -c %a "$T/files/d/e")" = 700 ] ||
  fail "directory modes $(stat -c %a "$T/files/d") $(stat -c %a "$T/files/d/e")"
stop_runner
start_runner --file-mode 0640
cli file create g/b.img size 1M >/dev/null
[ "$(stat -c %a "$T/files/g/b.img")" = 640 ] && [ "$(stat -c %a "$T/files/g")" = 750 ] ||
  fail "file-mode 0640: $(stat -c %a "$T/files/g/b.img") in $(stat -c %a "$T/files/g")"
stop_runner
runner_refuses 1 "file-mode: '0755' is not an octal mode from 0600 to 0666" --file-mode 0755
runner_refuses 1 "file-mode: '0400' is not an octal mode" --file-mode 0400
pass "backing files 0600 in 0700 directories; file-mode 0640 gives 0640 in 0750; 0755 and 0400 refused"
