#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
# The admin unix socket (issue 26): the control RPC program on a unix
# socket, where the kernel tells the runner who calls (SO_PEERCRED). root
# is admin; any other uid is refused with EACCES and a message naming its
# uid. nbd-cli uses the socket when no host is given, so an operator on
# the storage node needs no address and no credentials; a socket file
# left by a runner killed with SIGKILL is passed over (nbd-cli) and
# replaced (the next runner), and a second live runner cannot take it.
source "$(dirname "$0")/functions.sh"
requires setpriv python3

start_runner
SOCK="$T/control.sock"
export NBD_RUNNER_CONTROL_SOCKET="$SOCK"
[ -S "$SOCK" ] || fail "no admin socket at $SOCK"
grep -q "admin socket listening on $SOCK (root only)" "$T/runner.out" || fail "socket not logged"
"$CLI" file create a.img size 1M >/dev/null || fail "create over the admin socket"
"$CLI" file list | grep -q '^a.img' || fail "list over the admin socket"
"$CLI" file info a.img | grep -q "^runner: *unix:$SOCK" || fail "info did not use the admin socket"
grep -Eq 'INFO  \[audit\] create type "file" key "a.img" .* by "uid:0" from local pid [0-9]+: ok' \
  "$T/log/nbd-runner.log" || fail "the create's audit line lacks uid:0"
pass "root uses the admin socket without host: create, list, info; audited as uid:0"

chmod 755 "$T"  # let uid nobody reach the socket (mode 0666), to be refused by the runner
as_nobody() { setpriv --reuid=nobody --regid=nogroup --clear-groups "$@"; }
NOBODY=$(id -u nobody)
expect_fail 1 "list refused: the admin socket takes root \(uid 0\) only, and the caller is uid $NOBODY" \
  as_nobody "$CLI" file list
expect_fail 1 "create refused: .*uid $NOBODY" as_nobody "$CLI" file create b.img size 1M
[ -e "$T/files/b.img" ] && fail "a non-root caller created a backstore"
expect_fail 1 "delete refused" as_nobody "$CLI" file delete a.img
for verb in "version" "file info a.img" "file modify a.img allow psk:x" "file create c.img size 1M auth"; do
  # shellcheck disable=SC2086
  expect_fail 1 "refused: the admin socket takes root" as_nobody "$CLI" $verb
done
[ -e "$T/files/a.img" ] || fail "a non-root caller deleted a backstore"
grep -Eq "\[audit\] delete type \"file\" key \"a.img\" by \"uid:$NOBODY\" from local pid [0-9]+: failed \(EACCES\)" \
  "$T/log/nbd-runner.log" || fail "the refused delete is not audited"
grep -q "WARN  \[rpc\] list from local pid [0-9]*: list refused" "$T/log/nbd-runner.log" ||
  fail "the refused list is not logged"
pass "uid $NOBODY is refused every call on the admin socket, with its uid named; logged and audited"

expect_fail 1 "another process listens on $SOCK" "$RUNNER" --foreground --rpc-host 127.0.0.1 \
  --rpc-port 0 --io-host 127.0.0.1 --io-port 0 --state-dir "$T/s2" --log-dir "$T/l2" \
  --file-dir "$T/f2" --handler-dir "$NBDR_BUILD/lib/nbd-runner" --control-socket "$SOCK"
kill_now
[ -S "$SOCK" ] || fail "the killed runner's socket file is gone (the test needs it stale)"
expect_fail 3 "cannot reach nbd-runner at localhost:24110" "$CLI" version
start_runner
"$CLI" file list | grep -q '^a.img' || fail "the new runner did not take over the stale socket"
stop_runner
[ -e "$SOCK" ] && fail "the socket file outlived a clean stop"
pass "a second runner cannot take a live socket; a stale one is passed over by nbd-cli and replaced; a stop removes it"
