# SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
# Helpers of the high-availability tests (sourced after functions.sh):
# several runners on loopback, each with its own state directory, most
# sharing one file directory as runners share a volume or a pool.
HA_MEMBER_OPTS=(${HA_MEMBER_OPTS[@]+"${HA_MEMBER_OPTS[@]}"})

# start_member NAME [FILE_DIR [RPC_PORT IO_PORT]]: a runner with its own
# state under $T/NAME, and the options in HA_MEMBER_OPTS (a backend's);
# sets PORT_NAME, NBD_NAME and PID_NAME.
start_member() {
  local name=$1 files=${2:-$T/files} rpc_port=${3:-0} io_port=${4:-0} i
  mkdir -p "$T/$name/state" "$T/$name/log" "$files"
  : >"$T/$name/out"
  "$RUNNER" --foreground --rpc-host 127.0.0.1 --rpc-port "$rpc_port" --io-host 127.0.0.1 \
    --io-port "$io_port" --state-dir "$T/$name/state" --log-dir "$T/$name/log" --file-dir "$files" \
    --control-socket "$T/$name/control.sock" \
    --handler-dir "${HANDLER_DIR:-$NBDR_BUILD/lib/nbd-runner}" "${HA_MEMBER_OPTS[@]}" \
    >>"$T/$name/out" 2>&1 &
  printf -v "PID_$name" %s $!
  for i in $(seq 1 600); do
    grep -q 'control RPC listening' "$T/$name/out" && break
    sleep 0.1
  done
  printf -v "PORT_$name" %s "$(sed -n 's/.*control RPC listening on .* (port \([0-9]*\)).*/\1/p' "$T/$name/out" | tail -1)"
  printf -v "NBD_$name" %s "nbd://127.0.0.1:$(sed -n 's/.*NBD listening on .* (port \([0-9]*\)).*/\1/p' "$T/$name/out" | tail -1)"
  local port="PORT_$name"
  [ -n "${!port}" ] || { cat "$T/$name/out"; fail "runner $name did not start"; }
}
# start_members NAME...: start_member NAME for each, and sets NAME to its
# control address (127.0.0.1:PORT).
start_members() {
  local m port
  for m in "$@"; do
    start_member "$m"
    port="PORT_$m"
    printf -v "$m" %s "127.0.0.1:${!port}"
  done
}
stop_member() {
  local pid="PID_$1"
  [ -n "${!pid:-}" ] || return 0
  kill -TERM "${!pid}" 2>/dev/null || true
  wait "${!pid}" 2>/dev/null || true
  printf -v "PID_$1" %s ""
}
cleanup 'for m in A B C D E; do stop_member $m; done'

# saved_set NAME KEY: the runner set runner NAME's saveconfig.json records
# for KEY, comma-separated ("" when none, or no such record).
saved_set() { python3 -c '
import json, sys
for b in json.load(open(sys.argv[1]))["backstores"]:
    if b["key"] == sys.argv[2]: print(",".join(b.get("runners", [])))' "$T/$1/state/saveconfig.json" "$2"; }
