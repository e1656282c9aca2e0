# SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
# Shared helpers for the integration tests (sourced, never run).
#
# Each test: sources this file, states its prerequisites with `requires`,
# starts a real nbd-runner with `start_runner` (ports picked by the kernel,
# bound to 127.0.0.1, state in a fresh temporary directory), uses real
# clients, and leaves nothing behind: cleanup runs on every exit.
#
# Exit codes: 0 passed, 1 failed, 77 skipped (a prerequisite is missing;
# the reason is printed).

set -euo pipefail

: "${NBDR_BUILD:?NBDR_BUILD must point at the build directory}"
: "${NBDR_SRC:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
RUNNER="$NBDR_BUILD/sbin/nbd-runner"
CLI="$NBDR_BUILD/sbin/nbd-cli"
# python3-libnbd lives in Debian's python, not in a pyenv one.
export PATH="/usr/bin:/usr/sbin:$PATH"
export PYTHONPATH="/usr/lib/python3/dist-packages${PYTHONPATH:+:$PYTHONPATH}"

T=$(mktemp -d /tmp/nbdr-test.XXXXXX)
_cleanup_fns=()
cleanup() { _cleanup_fns+=("$*"); }
_run_cleanup() {
  local rc=$?
  for ((i = ${#_cleanup_fns[@]} - 1; i >= 0; i--)); do eval "${_cleanup_fns[$i]}" || true; done
  if [ $rc -ne 0 ] && [ $rc -ne 77 ] && [ -f "$T/log/nbd-runner.log" ]; then
    echo "---- last lines of nbd-runner.log ----"
    tail -n 40 "$T/log/nbd-runner.log"
  fi
  rm -rf "$T"
  exit $rc
}
trap _run_cleanup EXIT

skip() { echo "SKIPPED: $*"; exit 77; }

# plain_build_only WHY: skips the test in the sanitizer build, where CI's
# time is short: a slow suite whose code paths the sanitizer build runs
# in other tests (WHY says which); the plain build always runs it.
plain_build_only() {
  if ldd "$RUNNER" | grep -q libasan; then skip "$* (the plain build runs it)"; fi
}
fail() { echo "FAILED: $*" >&2; exit 1; }
pass() { echo "ok - $*"; }

# requires CMD...: skip unless every command exists.
requires() {
  local c
  for c in "$@"; do command -v "$c" >/dev/null 2>&1 || skip "needs $c"; done
}

# start_runner [extra options...]: starts nbd-runner in the foreground on
# free loopback ports with its state under $T; sets RUNNER_PID, RPC_PORT,
# IO_PORT, RPC (host:port for nbd-cli) and NBD (nbd://host:port).
start_runner() {
  # With TLS on, a plain control caller is only a client (and with TLS
  # required, refused): cli then works as root on the storage node does,
  # through the admin socket.
  CLI_VIA_SOCKET=
  case " $* " in *" --tls require "* | *" --tls on "*) CLI_VIA_SOCKET=1 ;; esac
  mkdir -p "$T/state" "$T/log" "$T/files"
  : > "$T/runner.out"
  "$RUNNER" --foreground --rpc-host 127.0.0.1 --rpc-port 0 --io-host 127.0.0.1 --io-port 0 \
    --state-dir "$T/state" --log-dir "$T/log" --file-dir "$T/files" \
    --control-socket "$T/control.sock" \
    --handler-dir "${HANDLER_DIR:-$NBDR_BUILD/lib/nbd-runner}" "$@" >>"$T/runner.out" 2>&1 &
  RUNNER_PID=$!
  cleanup stop_runner
  local i
  # Up to 60 s: an ASan build loading every handler on a busy 2-core
  # machine is slow to start.
  for i in $(seq 1 600); do
    if grep -q 'control RPC listening' "$T/runner.out"; then break; fi
    kill -0 "$RUNNER_PID" 2>/dev/null || { cat "$T/runner.out"; fail "nbd-runner exited at start"; }
    sleep 0.1
  done
  RPC_PORT=$(sed -n 's/.*control RPC listening on .* (port \([0-9]*\)).*/\1/p' "$T/runner.out" | tail -1)
  IO_PORT=$(sed -n 's/.*NBD listening on .* (port \([0-9]*\)).*/\1/p' "$T/runner.out" | tail -1)
  [ -n "$RPC_PORT" ] && [ -n "$IO_PORT" ] || { cat "$T/runner.out"; fail "nbd-runner did not start"; }
  RPC="127.0.0.1:$RPC_PORT"
  NBD="nbd://127.0.0.1:$IO_PORT"
}

# runner_refuses EXIT_CODE PATTERN [options...]: nbd-runner with this
# test's directories and the given options must refuse to start, exiting
# with EXIT_CODE and printing PATTERN (grep -E).
runner_refuses() {
  local want=$1 pattern=$2
  shift 2
  mkdir -p "$T/state" "$T/log" "$T/files"
  local rc=0
  timeout 60 "$RUNNER" --foreground --rpc-host 127.0.0.1 --rpc-port 0 --io-host 127.0.0.1 \
    --io-port 0 --state-dir "$T/state" --log-dir "$T/log" --file-dir "$T/files" \
    --control-socket "$T/refused.sock" \
    --handler-dir "${HANDLER_DIR:-$NBDR_BUILD/lib/nbd-runner}" "$@" >"$T/refused.out" 2>&1 ||
    rc=$?
  [ $rc -eq "$want" ] || { cat "$T/refused.out"; fail "nbd-runner $* exited $rc, wanted $want"; }
  grep -Eq -- "$pattern" "$T/refused.out" ||
    { cat "$T/refused.out"; fail "nbd-runner $*: output lacks '$pattern'"; }
}

# seed_saveconfig MAPPED_KEY DEVICE CREATED_KEY: before start_runner, the
# state a runner leaves when it stops with file backstore MAPPED_KEY mapped
# on DEVICE and CREATED_KEY only created (1 MiB files under $T/files).
seed_saveconfig() {
  mkdir -p "$T/state" "$T/files"
  truncate -s 1M "$T/files/$1" "$T/files/$3"
  cat >"$T/state/saveconfig.json" <<JSON
{"version": 1, "backstores": [
  {"type": "file", "key": "$1", "size": 1048576, "status": "mapped", "device": "$2",
   "map_time": "2026-11-22T10:00:00Z", "create_time": "2026-11-22T09:00:00Z"},
  {"type": "file", "key": "$3", "size": 1048576, "status": "created",
   "create_time": "2026-11-22T09:00:00Z"}]}
JSON
}

# stop_runner: SIGTERM and wait; fails the test if the runner does not
# exit cleanly within 30 s.
stop_runner() {
  [ -n "${RUNNER_PID:-}" ] || return 0
  if kill -0 "$RUNNER_PID" 2>/dev/null; then
    kill -TERM "$RUNNER_PID"
    local i
    for i in $(seq 1 300); do kill -0 "$RUNNER_PID" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$RUNNER_PID" 2>/dev/null; then
      kill -9 "$RUNNER_PID"
      RUNNER_PID=
      fail "nbd-runner did not stop within 30 s of SIGTERM"
    fi
  fi
  local rc=0
  wait "$RUNNER_PID" || rc=$?
  RUNNER_PID=
  [ $rc -eq 0 ] || fail "nbd-runner exited with status $rc"
}

# kill_now [PID_VARIABLE]: kills that runner (default RUNNER_PID) with
# SIGKILL, as a crash or a power cut would, and forgets its pid.
kill_now() {
  local var=${1:-RUNNER_PID}
  kill -9 "${!var}"
  wait "${!var}" 2>/dev/null || true
  printf -v "$var" %s ""
}

# rpc_call PROC STRING...: one ONC RPC call to this test's runner with
# string arguments (what nbd-cli sends, without nbd-cli's own checks);
# prints "status ERRNO MESSAGE". PROC: 5 map, 6 mapped, 7 unmap, ...
rpc_call() { python3 "$NBDR_SRC/tests/integration/onc_rpc.py" "$RPC_PORT" "$@"; }

# rpc_map_as CLIENT TYPE KEY DEVICE: records KEY as mapped on DEVICE of
# host CLIENT (NBDR_MAP, then NBDR_MAPPED with its token), as that host's
# nbd-cli would; fails the test when the runner refuses.
rpc_map_as() {
  local out token
  out=$(rpc_call 5 "$2" "$3" "$1")
  token=$(sed -n 's/^token //p' <<<"$out")
  grep -q "^status 0 " <<<"$out" && rpc_call 6 "$2" "$3" "$4" "$1" "u64:$token" | grep -q "^status 0 " ||
    fail "recording $2/$3 as mapped on $4 of $1: $out"
}

# cli ARGS...: nbd-cli against this test's runner.
cli() {
  if [ -n "${CLI_VIA_SOCKET:-}" ]; then
    NBD_RUNNER_CONTROL_SOCKET="$T/control.sock" "$CLI" "$@"
  else
    "$CLI" "$@" host "$RPC"
  fi
}

# expect_fail EXIT_CODE PATTERN CMD...: CMD must fail with that exit status
# and print PATTERN (grep -E) on stderr.
expect_fail() {
  local want=$1 pattern=$2
  shift 2
  local rc=0
  "$@" >"$T/out" 2>"$T/err" || rc=$?
  [ $rc -eq "$want" ] || { cat "$T/out" "$T/err"; fail "'$*' exited $rc, wanted $want"; }
  grep -Eq -- "$pattern" "$T/err" || { cat "$T/err"; fail "'$*': stderr lacks '$pattern'"; }
}
