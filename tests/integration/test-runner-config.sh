#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
# Test nbd-runner's options: a config file (key = value) with handler
# options, the command line overriding it, unknown options refused with
# their origin, --help and --version, and an IPv6 listen address.
source "$(dirname "$0")/functions.sh"
requires qemu-img

# Into a file: grep -q would stop reading early, and a help longer than a
# pipe write would end in SIGPIPE.
"$RUNNER" --help >"$T/help" || fail "--help failed"
grep -q -- '--state-dir DIR' "$T/help" || fail "--help lacks --state-dir"
"$RUNNER" --version | grep -q 'nbd-runner 0' || fail "--version"
pass "--help and --version"

mkdir -p "$T/conf-files"
cat >"$T/runner.conf" <<CONF
# a comment
file-dir = $T/conf-files
log-level = debug
rpc-port = 1
CONF
start_runner --config "$T/runner.conf"
# --file-dir given by start_runner on the command line wins over the file;
# --rpc-port 0 on the command line wins over rpc-port = 1.
cli file create a.img size 1M >/dev/null
[ -f "$T/files/a.img" ] || fail "command line did not override the config file"
grep -q 'DEBUG' "$T/log/nbd-runner.log" || fail "log-level from the config file ignored"
pass "config file read; the command line wins over it"
stop_runner

echo "no-such-option = 1" >"$T/bad.conf"
rc=0
"$RUNNER" --config "$T/bad.conf" --state-dir "$T/s2" --log-dir "$T/l2" \
  --handler-dir "$NBDR_BUILD/lib/nbd-runner" --foreground >"$T/out" 2>&1 || rc=$?
[ $rc -ne 0 ] || fail "unknown option accepted"
grep -q "bad.conf:1: unknown option 'no-such-option'" "$T/out" || { cat "$T/out"; fail "message"; }
pass "an unknown option is refused with file and line"

runner_refuses 2 "command line: unknown option 'bogus'" --bogus 1
pass "an unknown option on the command line: exit 2, as for any usage error"

# A handler that refuses its configuration stops the start: a runner
# without its file handler would leave every file backstore unserved.
runner_refuses 1 "refusing to start: handler 'file': file-io: 'bogus' is not" --file-io bogus
touch "$T/not-a-dir"
runner_refuses 1 "refusing to start: handler 'file': base directory $T/not-a-dir.*" \
  --file-dir "$T/not-a-dir/files"
pass "a handler option the handler refuses stops the start, naming the handler and the option"

# --check-config: the verdict a start would reach, beside a serving runner.
start_runner
"$RUNNER" --check-config --state-dir "$T/state" --file-dir "$T/files" \
  --handler-dir "$NBDR_BUILD/lib/nbd-runner" >"$T/check" 2>&1 ||
  { cat "$T/check"; fail "--check-config of a good configuration"; }
grep -q "^configuration OK: handlers file, gluster, rbd; 1 backstore(s) in $T/state/saveconfig.json" \
  "$T/check" || { cat "$T/check"; fail "--check-config verdict"; }
rc=0
"$RUNNER" --check-config --state-dir "$T/state" --file-dir "$T/files" --file-io bogus \
  --handler-dir "$NBDR_BUILD/lib/nbd-runner" >"$T/check" 2>&1 || rc=$?
[ $rc -eq 1 ] && tail -1 "$T/check" | grep -q "^configuration refused: refusing to start: handler 'file': file-io" ||
  { cat "$T/check"; fail "--check-config of a bad file-io: exit $rc"; }
rc=0
"$RUNNER" --check-config --state-dir "$T/state" --bogus 1 \
  --handler-dir "$NBDR_BUILD/lib/nbd-runner" >"$T/check" 2>&1 || rc=$?
[ $rc -eq 2 ] && grep -q "^configuration refused: command line: unknown option 'bogus'" "$T/check" ||
  { cat "$T/check"; fail "--check-config of an unknown option: exit $rc"; }
cli file list >/dev/null || fail "the serving runner was disturbed"
stop_runner
pass "--check-config gives a start's verdict and exit status beside a serving runner"

rc=0
"$RUNNER" --rpc-port 70000 >"$T/out" 2>&1 || rc=$?
[ $rc -eq 2 ] && grep -q "rpc-port: '70000' is not a number from 0 to 65535" "$T/out" || fail "bad port"
pass "an out-of-range port is refused"

echo "gluster-hosts = h1,h2" >"$T/g.conf"
mkdir -p "$T/only-file"  # a runner without the gluster handler
cp "$NBDR_BUILD/lib/nbd-runner/libfile_handler.so" "$T/only-file/"
"$RUNNER" --config "$T/g.conf" --state-dir "$T/s3" --log-dir "$T/l3" --file-dir "$T/f3" \
  --handler-dir "$T/only-file" --foreground --rpc-host 127.0.0.1 --rpc-port 0 \
  --io-host 127.0.0.1 --io-port 0 >"$T/out3" 2>&1 &
P=$!
cleanup "kill $P 2>/dev/null"
for _ in $(seq 50); do grep -q 'control RPC listening' "$T/out3" && break; sleep 0.1; done
grep -q "option 'gluster-hosts' ignored: its handler is not loaded" "$T/out3" || { cat "$T/out3"; fail "warning"; }
kill $P; wait $P || true
pass "options of a handler that is not installed warn instead of failing"

if python3 -c 'import socket; s=socket.socket(socket.AF_INET6); s.bind(("::1", 0))' 2>/dev/null; then
  mkdir -p "$T/s6"
  "$RUNNER" --foreground --rpc-host ::1 --rpc-port 0 --io-host ::1 --io-port 0 --state-dir "$T/s6" \
    --log-dir "$T/l6" --file-dir "$T/f6" --handler-dir "$NBDR_BUILD/lib/nbd-runner" >"$T/out6" 2>&1 &
  P=$!
  cleanup "kill $P 2>/dev/null"
  for _ in $(seq 50); do grep -q 'control RPC listening' "$T/out6" && break; sleep 0.1; done
  RP=$(sed -n 's/.*control RPC listening on .* (port \([0-9]*\)).*/\1/p' "$T/out6")
  IP=$(sed -n 's/.*NBD listening on .* (port \([0-9]*\)).*/\1/p' "$T/out6")
  "$CLI" file create six.img size 1M host "[::1]:$RP" >/dev/null || fail "create over IPv6"
  qemu-img info "nbd://[::1]:$IP/file/six.img" | grep -q 'virtual size: 1 MiB' || fail "NBD over IPv6"
  kill $P; wait $P || true
  pass "IPv6: control and NBD ports on ::1"
else
  echo "(no IPv6 loopback here: IPv6 check not run)"
fi
