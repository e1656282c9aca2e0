#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
# Test the handler author kit: after `cmake --install`, the example handler
# (examples/handler-skeleton, an in-memory backstore) builds out of tree
# against the installed SDK only (pkg-config nbd-runner-handler), installs
# itself into the runner's handler directory, and the installed runner
# serves a backstore of that type to nbd-cli and real NBD clients.
source "$(dirname "$0")/functions.sh"
requires cmake pkg-config qemu-io nbdinfo cc

cmake --install "$NBDR_BUILD" --prefix "$T/prefix" >"$T/install.log" 2>&1 || { cat "$T/install.log"; fail "install"; }
export PKG_CONFIG_PATH="$T/prefix/lib/pkgconfig"
pkg-config --exists nbd-runner-handler || fail "pkg-config does not know nbd-runner-handler"
[ "$(pkg-config --variable=abi_version nbd-runner-handler)" = 1 ] || fail "abi_version"
cmake -S "$NBDR_SRC/examples/handler-skeleton" -B "$T/skeleton" >"$T/skel.log" 2>&1 &&
  cmake --build "$T/skeleton" >>"$T/skel.log" 2>&1 &&
  cmake --install "$T/skeleton" >>"$T/skel.log" 2>&1 || { cat "$T/skel.log"; fail "skeleton build"; }
[ -f "$T/prefix/lib/nbd-runner/libmem_handler.so" ] || fail "libmem_handler.so not in the handler directory"
pass "the skeleton handler builds out of tree against the installed SDK and installs itself"

RUNNER="$T/prefix/sbin/nbd-runner" HANDLER_DIR="$T/prefix/lib/nbd-runner" start_runner
grep -q "loaded handler 'mem' 1.0" "$T/runner.out" || { cat "$T/runner.out"; fail "mem handler not loaded"; }
CLI="$T/prefix/sbin/nbd-cli"
cli mem create scratch size 16M >/dev/null
qemu-io -f raw -c 'write -P 0x42 0 1M' -c 'write -z 512k 64k' -c 'read -P 0x42 0 512k' \
  -c 'read -P 0 512k 64k' -c 'discard 1M 1M' -c 'read -P 0 1M 1M' -c 'flush' \
  "$NBD/mem/scratch" >"$T/qio" 2>&1 || { cat "$T/qio"; fail "qemu-io on the mem backstore"; }
grep -q 'verification failed' "$T/qio" && { cat "$T/qio"; fail "wrong data"; }
nbdinfo --json "$NBD/mem/scratch" >"$T/info.json"
grep -q '"can_trim": true' "$T/info.json" && grep -q '"can_fua": false' "$T/info.json" ||
  { cat "$T/info.json"; fail "capabilities not advertised from the handler"; }
cli mem delete scratch >/dev/null
pass "nbd-cli and NBD clients use a backstore of the out-of-tree type"

# nbd-cli has no list of types: its help for one it was not built with
# names no other handler's key grammar, and the runner's --help lists the
# out-of-tree handler's options from its config help.
"$CLI" mem help >"$T/mem.help"
grep -q "^Usage: nbd-cli mem create KEY" "$T/mem.help" &&
  grep -q "^KEY: the object's name as the mem handler knows it" "$T/mem.help" ||
  { cat "$T/mem.help"; fail "nbd-cli mem help"; }
"$T/prefix/sbin/nbd-runner" --help >"$T/runner.help"
grep -q "^  \[mem\]" "$T/runner.help" || { cat "$T/runner.help"; fail "--help does not list the mem handler"; }
pass "nbd-cli mem help and nbd-runner --help know the out-of-tree type"
