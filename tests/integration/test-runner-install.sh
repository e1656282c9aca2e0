#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
# Test the installed layout: cmake --install puts the programs, the handler
# and the public header under a prefix, and the installed runner finds its
# handlers there without --handler-dir.
source "$(dirname "$0")/functions.sh"
requires cmake qemu-img

cmake --install "$NBDR_BUILD" --prefix "$T/prefix" >/dev/null
for f in sbin/nbd-runner sbin/nbd-cli lib/nbd-runner/libfile_handler.so include/nbd-runner/handler.h; do
  [ -e "$T/prefix/$f" ] || fail "missing $f after install"
done
pass "install lays out sbin/, lib/nbd-runner/ and include/nbd-runner/"

nm -D --defined-only "$T/prefix/lib/nbd-runner/libfile_handler.so" | awk '{print $3}' | grep -v '^_' >"$T/syms" || true
[ "$(cat "$T/syms")" = handler_init ] || { cat "$T/syms"; fail "handler exports more than handler_init"; }
pass "the handler exports only handler_init"

RUNNER="$T/prefix/sbin/nbd-runner" HANDLER_DIR="$T/prefix/lib/nbd-runner" start_runner
grep -q "loaded handler 'file'.*$T/prefix/lib/nbd-runner/libfile_handler.so" "$T/runner.out" || true
stop_runner
# Without --handler-dir: the default is relative to the installed binary.
mkdir -p "$T/s2"
"$T/prefix/sbin/nbd-runner" --foreground --rpc-host 127.0.0.1 --rpc-port 0 --io-host 127.0.0.1 \
  --io-port 0 --state-dir "$T/s2" --log-dir "$T/l2" --file-dir "$T/f2" >"$T/out" 2>&1 &
P=$!
for _ in $(seq 50); do grep -q 'control RPC listening' "$T/out" && break; sleep 0.1; done
grep -q "loaded handler 'file' .* from $T/prefix/lib/nbd-runner/libfile_handler.so" "$T/out" \
  || { cat "$T/out"; kill $P; fail "installed runner did not find its handler"; }
RP=$(sed -n 's/.*control RPC listening on .* (port \([0-9]*\)).*/\1/p' "$T/out")
"$T/prefix/sbin/nbd-cli" file create i.img size 1M host "127.0.0.1:$RP" >/dev/null || fail "create"
kill -TERM $P; wait $P || fail "installed runner did not stop cleanly"
pass "the installed runner finds its handler directory relative to its prefix"
