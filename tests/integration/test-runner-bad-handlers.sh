#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
# Test that broken handler plugins never take the runner down: a wrong ABI
# version, no handler_init, handler_init returning NULL, a duplicate type,
# a crash inside handler_init and a truncated descriptor each get one clear
# log line, and the good handlers next to them are served, including one
# built before the optional callbacks existed (struct_size =
# NBDR_HANDLER_MIN_STRUCT_SIZE).
source "$(dirname "$0")/functions.sh"
requires cc qemu-img qemu-io python3

H="$T/handlers"
mkdir -p "$H"
cp "$NBDR_BUILD/lib/nbd-runner/libfile_handler.so" "$H/"
build() {  # name C-source
  printf '%s\n' "#include <nbd-runner/handler.h>" "#include <stddef.h>" "$2" >"$T/$1.c"
  cc -shared -fPIC -I"$NBDR_SRC/include" -o "$H/lib$1_handler.so" "$T/$1.c"
}
build wrongabi 'static struct nbdr_handler h = { sizeof(struct nbdr_handler), 999, "wrongabi" };
const struct nbdr_handler *handler_init(const struct nbdr_services *s) { (void)s; return &h; }'
build noinit 'int unrelated(void) { return 1; }'
build nullinit 'const struct nbdr_handler *handler_init(const struct nbdr_services *s) { (void)s; return NULL; }'
build crash 'const struct nbdr_handler *handler_init(const struct nbdr_services *s) { (void)s; *(volatile int *)0 = 1; return NULL; }'
build short 'static struct nbdr_handler h = { 8, NBDR_HANDLER_ABI_VERSION, "short" };
const struct nbdr_handler *handler_init(const struct nbdr_services *s) { (void)s; return &h; }'
# A working handler from before identify(): a 1 MiB export of zeroes.
build old '#include <string.h>
static int ld(const struct nbdr_services *s, void **st, char *e, size_t n) { (void)s; (void)e; (void)n; *st = &ld; return 0; }
static void unld(void *st) { (void)st; }
static int mk(void *st, const char *k, const struct nbdr_create_params *p, char *e, size_t n) { (void)st; (void)k; (void)p; (void)e; (void)n; return 0; }
static int rm(void *st, const char *k, char *e, size_t n) { (void)st; (void)k; (void)e; (void)n; return 0; }
static int op(void *st, const char *k, int ro, struct nbdr_export_info *i, void **x, char *e, size_t n) { (void)k; (void)ro; (void)e; (void)n; i->size = 1 << 20; i->caps = 0; *x = st; return 0; }
static void cl(void *x) { (void)x; }
static void sub(void *x, struct nbdr_request *r) { (void)x; if (r->type == NBDR_REQ_READ) memset(r->buf, 0, r->length); r->complete(r, r->type == NBDR_REQ_READ ? 0 : 95); }
static struct nbdr_handler h = { NBDR_HANDLER_MIN_STRUCT_SIZE, NBDR_HANDLER_ABI_VERSION, "old", "before identify", "1", "", NULL, ld, unld, mk, rm, op, cl, sub };
const struct nbdr_handler *handler_init(const struct nbdr_services *s) { (void)s; return &h; }'
# A second "file" handler: the copy sorts after libfile_handler.so.
cp "$NBDR_BUILD/lib/nbd-runner/libfile_handler.so" "$H/libzfile_handler.so"
echo "not an ELF file" >"$H/libgarbage_handler.so"

HANDLER_DIR="$H" start_runner
L="$T/log/nbd-runner.log"
check() {  # plugin pattern
  grep -q "$H/$1: not loaded: .*$2" "$L" || { cat "$L"; fail "no clear line for $1"; }
  pass "$(grep -o "$1: not loaded: .*" "$L" | sed "s|$H/||g")"
}
check libwrongabi_handler.so "built for handler ABI version 999, this runner speaks 1"
check libnoinit_handler.so "no handler_init symbol"
check libnullinit_handler.so "handler_init returned NULL"
check libcrash_handler.so "crashed while loading"
check libzfile_handler.so "a handler of type 'file' is already loaded"
check libgarbage_handler.so "dlopen"
check libshort_handler.so "descriptor too small (8 bytes, need [0-9]*)"
[ "$(grep -c 'not loaded' "$L")" -eq 7 ] || fail "expected exactly one line per bad plugin"

cli file create good.img size 1M >/dev/null
qemu-img info "$NBD/file/good.img" | grep -q 'virtual size: 1 MiB' || fail "good handler not served"
pass "the good handler is served next to seven bad ones"

grep -q "loaded handler 'old'" "$L" || fail "the handler without identify() was not loaded"
cli old create o1 size 1M >/dev/null
qemu-io -f raw -r -c 'read -P 0 0 64k' "$NBD/old/o1" | grep -q 'read 65536' || fail "old handler not served"
python3 -c 'import json, sys
b = [b for b in json.load(open(sys.argv[1]))["backstores"] if b["type"] == "old"]
sys.exit(0 if b and b[0]["extras"] == {} else 1)' "$T/state/saveconfig.json" ||
  { cat "$T/state/saveconfig.json"; fail "extras of a handler without identify"; }
pass "a handler built before identify() loads and serves; its backstores keep {} as extras"
