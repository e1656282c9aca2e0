# SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
# Backend-generic helpers for the backstore tests (sourced after
# functions.sh, never run). The scripts in backstore/ run unchanged against
# every backend; ctest registers each once per backend with NBDR_BACKEND set
# to file, file-uring (the file handler with file-io = uring), gluster or
# rbd. The gluster and rbd backends use the real
# glusterd / Ceph cluster that the suite's fixtures started
# (tests/backends/*-ctl) and skip, with the reason, when there is none.

BACKEND=${NBDR_BACKEND:-file}
FILE_IO_OPTS=()
if [ "$BACKEND" = file-uring ]; then
  BACKEND=file
  FILE_IO_OPTS=(--file-io uring)
fi
# Unique per test run, so tests sharing one volume or pool never collide.
TEST_ID="$(basename "$0" .sh)-$$"
BS_RUNNER_OPTS=()
case "$BACKEND" in
  file) BS_RUNNER_OPTS=("${FILE_IO_OPTS[@]}") ;;
  gluster)
    _env=${NBDR_GLUSTER_DIR:-/tmp/nbdr-test-gluster}/env
    [ -f "$_env" ] || skip "no test glusterd is running (the gluster-up fixture did not start one)"
    source "$_env"
    BS_RUNNER_OPTS=(--gluster-hosts "$GLUSTER_HOSTS")
    ;;
  rbd)
    _env=${NBDR_CEPH_DIR:-/tmp/nbdr-test-ceph}/env
    [ -f "$_env" ] || skip "no test Ceph cluster is running (the ceph-up fixture did not start one)"
    source "$_env"
    BS_RUNNER_OPTS=(--ceph-conf "$CEPH_CONF")
    ;;
  *) fail "NBDR_BACKEND: unknown backend '$BACKEND'" ;;
esac

# ceph_pid mon|osd: the PID of the test cluster's running monitor or OSD
# (for the rbd fault tests to freeze it); fails the test when there is none.
ceph_pid() {
  local pid
  pid=$(bash "$NBDR_SRC/tests/backends/ceph-ctl" "$1-pid")
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || fail "no running Ceph $1 process"
  echo "$pid"
}

# bs_key NAME: the key of this test's backstore NAME (a relative path such
# as vm/disk.img) on this backend.
bs_key() {
  case "$BACKEND" in
    file) echo "$1" ;;
    gluster) echo "$GLUSTER_VOL/$TEST_ID/$1" ;;
    rbd) echo "$CEPH_POOL/$TEST_ID-${1//\//-}" ;;
  esac
}

# bs_uri NAME: the NBD URI of backstore NAME on the running runner.
bs_uri() { echo "$NBD/$BACKEND/$(bs_key "$1")"; }

# bs_start_runner [options...]: start_runner with this backend's options.
bs_start_runner() {
  start_runner "${BS_RUNNER_OPTS[@]}" "$@"
}

# bs_start_second_runner: a second runner on the same storage with its own
# state directory ($T/state2; kept across calls), stopped at the end; sets
# R2 (its pid), H2 (nbd-cli's "host ..." words for it) and IO2 (its NBD
# port).
bs_start_second_runner() {
  mkdir -p "$T/state2" "$T/log2"
  : >"$T/runner2.out"
  "$RUNNER" --foreground --rpc-host 127.0.0.1 --rpc-port 0 --io-host 127.0.0.1 --io-port 0 \
    --state-dir "$T/state2" --log-dir "$T/log2" --file-dir "$T/files" \
    --control-socket "$T/control2.sock" \
    --handler-dir "$NBDR_BUILD/lib/nbd-runner" "${BS_RUNNER_OPTS[@]}" >"$T/runner2.out" 2>&1 &
  R2=$!
  cleanup "kill -TERM $R2 2>/dev/null; wait $R2 2>/dev/null"
  local port
  for _ in $(seq 600); do grep -q 'control RPC listening' "$T/runner2.out" && break; sleep 0.1; done
  port=$(sed -n 's/.*control RPC listening on .* (port \([0-9]*\)).*/\1/p' "$T/runner2.out")
  [ -n "$port" ] || { cat "$T/runner2.out"; fail "the second runner did not start"; }
  H2="host 127.0.0.1:$port"
  IO2=$(sed -n 's/.*NBD listening on .* (port \([0-9]*\)).*/\1/p' "$T/runner2.out")
}

# bs_create NAME ARGS...: nbd-cli create on this backend; the backstore is
# deleted again when the test ends (while a runner is still up).
_bs_created=()
bs_create() {
  local name=$1
  shift
  cli "$BACKEND" create "$(bs_key "$name")" "$@" >/dev/null
  if [ ${#_bs_created[@]} -eq 0 ]; then cleanup _bs_delete_all; fi
  _bs_created+=("$(bs_key "$name")")
}
_bs_delete_all() {
  [ -n "${RUNNER_PID:-}" ] && kill -0 "$RUNNER_PID" 2>/dev/null || return 0
  local k
  for k in "${_bs_created[@]}"; do cli "$BACKEND" delete "$k" >/dev/null 2>&1 || true; done
}

# bs_backing_copy NAME OUT: copies the bytes the backend stores for NAME,
# read beside the runner (the file itself, the brick's file, rbd export),
# into OUT.
bs_backing_copy() {
  local key
  key=$(bs_key "$1")
  case "$BACKEND" in
    file) cp --sparse=always "$T/files/$key" "$2" ;;
    gluster) cp --sparse=always "$GLUSTER_BRICKS/${key%%/*}/${key#*/}" "$2" ;;
    rbd) rbd -c "$CEPH_CONF" export "$key" "$2" >/dev/null 2>&1 ;;
  esac
}

# gluster_stall_setup TIMEOUT: for a test that freezes the brick of
# GLUSTER_FAULT_VOL beside the healthy GLUSTER_VOL2: starts the runner
# with that gluster-timeout and sets STALLED and OTHER (this test's
# directories on the two volumes) and BRICK (the frozen volume's brick
# process, always thawed at the end). Cleans up KEY.img under both
# directories for every KEY in $STALL_KEYS.
gluster_stall_setup() {
  bs_start_runner --gluster-timeout "$1"
  STALLED="$GLUSTER_FAULT_VOL/$TEST_ID"
  OTHER="$GLUSTER_VOL2/$TEST_ID"
  local k
  for k in ${STALL_KEYS:-}; do
    cleanup "cli gluster delete '$STALLED/$k.img' >/dev/null 2>&1; cli gluster delete '$OTHER/$k.img' >/dev/null 2>&1"
  done
  BRICK=$(bash "$NBDR_SRC/tests/backends/gluster-ctl" brick-pid "$GLUSTER_FAULT_VOL")
  [ -n "$BRICK" ] || fail "no brick process for $GLUSTER_FAULT_VOL"
  cleanup "kill -CONT $BRICK 2>/dev/null"
}

# expect_eio_when_frozen URI PID TIMEOUT WHAT: over one NBD connection to
# URI, writes and flushes, freezes PID (SIGSTOP), writes and flushes again:
# that must fail with EIO within 2 * TIMEOUT + 10 s, not hang. Thaws PID
# and sets FROZEN_ELAPSED (seconds).
expect_eio_when_frozen() {
  local uri=$1 pid=$2 timeout=$3 what=$4
  cleanup "kill -CONT $pid 2>/dev/null"
  timeout 120 nbdsh -u "$uri" -c "
import os, signal, time
h.pwrite(b'a' * 65536, 2 << 20)
h.flush()
os.kill($pid, signal.SIGSTOP)
t = time.monotonic()
try:
    h.pwrite(b'b' * 65536, 3 << 20)
    h.flush()
    print('no error after', time.monotonic() - t)
except nbd.Error as e:
    print('error', e.string, 'after %d s' % round(time.monotonic() - t))
" >"$T/freeze" 2>&1 || true
  kill -CONT "$pid"
  cat "$T/freeze"
  grep -q 'error .*Input/output error.* after' "$T/freeze" || fail "no EIO from a frozen $what"
  FROZEN_ELAPSED=$(sed -n 's/.*after \([0-9]*\) s/\1/p' "$T/freeze")
  [ "$FROZEN_ELAPSED" -le $((2 * timeout + 10)) ] ||
    fail "EIO from a frozen $what took ${FROZEN_ELAPSED} s (timeout $timeout s)"
}

# expect_eio_during_fio URI TIMEOUT WHAT FAULT-COMMAND...: runs a fio
# verify job (random 64k writes, QD8) on URI, runs FAULT-COMMAND 3 s in,
# and expects fio to stop with EIO within 2 * TIMEOUT + 10 s. Sets
# FAULT_ELAPSED (seconds from the fault to fio's exit).
expect_eio_during_fio() {
  local uri=$1 timeout=$2 what=$3
  shift 3
  cat >"$T/run.fio" <<FIO
[fault]
ioengine=nbd
uri=$uri
rw=randwrite
bs=64k
iodepth=8
size=64M
time_based=1
runtime=120
verify=crc32c
verify_backlog=64
verify_state_save=0
FIO
  fio --output="$T/fio.out" "$T/run.fio" &
  local fio_pid=$! rc=0 start
  sleep 3
  kill -0 $fio_pid 2>/dev/null || { cat "$T/fio.out"; fail "fio stopped before the fault"; }
  start=$(date +%s)
  "$@" || fail "could not inject the fault ($*)"
  wait $fio_pid || rc=$?
  FAULT_ELAPSED=$(($(date +%s) - start))
  [ $rc -ne 0 ] || { cat "$T/fio.out"; fail "fio finished cleanly despite the $what fault"; }
  grep -Eq 'err= *5|Input/output error' "$T/fio.out" || { cat "$T/fio.out"; fail "fio did not see EIO"; }
  [ "$FAULT_ELAPSED" -le $((2 * timeout + 10)) ] ||
    fail "EIO took ${FAULT_ELAPSED} s after the $what fault (timeout $timeout s)"
}
