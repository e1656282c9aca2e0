#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
# nbd-cli's default runner (issue 26): without "host" on the command line
# it takes $NBD_RUNNER_HOST, then cli.conf's host, before the admin socket
# and localhost:24110; the command line wins over both, the environment
# over the file. A bad value stops the command with exit status 2 and
# names where it came from (even a file value the environment overrides).
source "$(dirname "$0")/functions.sh"

start_runner
cli file create a.img size 1M >/dev/null
export NBD_RUNNER_CONTROL_SOCKET="$T/control.sock"  # the runner's: proves it is not used
export NBD_CLI_CONFIG="$T/cli.conf"
: >"$T/cli.conf"
DEAD=127.0.0.1:1  # nobody listens there

"$CLI" file create local.img size 1M >/dev/null || fail "no host: the admin socket"
grep -q '\[audit\] create type "file" key "local.img" .* from local pid' "$T/log/nbd-runner.log" ||
  fail "without any host the admin socket was not used"
NBD_RUNNER_HOST="$RPC" "$CLI" file create env.img size 1M >/dev/null || fail "NBD_RUNNER_HOST"
grep -q '\[audit\] create type "file" key "env.img" .* from 127\.0\.0\.1:' "$T/log/nbd-runner.log" ||
  fail "NBD_RUNNER_HOST did not take the call to the control port"
expect_fail 3 "cannot reach nbd-runner at $DEAD" env NBD_RUNNER_HOST=$DEAD "$CLI" file list
NBD_RUNNER_HOST=$DEAD "$CLI" file list host "$RPC" | grep -q '^a.img' ||
  fail "the command line's host did not win over NBD_RUNNER_HOST"
pass "NBD_RUNNER_HOST names the runner; the command line's host wins over it"

echo "host = $RPC" >"$T/cli.conf"
"$CLI" file create conf.img size 1M >/dev/null || fail "cli.conf's host"
grep -q '\[audit\] create type "file" key "conf.img" .* from 127\.0\.0\.1:' "$T/log/nbd-runner.log" ||
  fail "cli.conf's host did not take the call to the control port"
echo "host = $DEAD" >"$T/cli.conf"
expect_fail 3 "cannot reach nbd-runner at $DEAD" "$CLI" file list
NBD_RUNNER_HOST="$RPC" "$CLI" file list | grep -q '^conf.img' ||
  fail "NBD_RUNNER_HOST did not win over cli.conf's host"
"$CLI" file list host "$RPC" | grep -q '^conf.img' || fail "the command line did not win over cli.conf"
pass "cli.conf's host names the runner; NBD_RUNNER_HOST and the command line win over it"

expect_fail 2 "NBD_RUNNER_HOST: .*port" env NBD_RUNNER_HOST=node1:99999 "$CLI" file list
echo "host = node1:notaport" >"$T/cli.conf"
expect_fail 2 "cli.conf:1: .*port" "$CLI" file list
expect_fail 2 "cli.conf:1: .*port" env NBD_RUNNER_HOST="$RPC" "$CLI" file list
echo "host =" >"$T/cli.conf"
expect_fail 2 "cli.conf:1: .*(empty|value)" "$CLI" file list
pass "a bad NBD_RUNNER_HOST or cli.conf host stops the command, naming where it came from"
