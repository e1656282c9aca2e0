#!/usr/bin/env bash
# Test that broken handler plugins never take the runner down: a wrong ABI
# version, no handler_init, handler_init returning NULL, a duplicate type
# and a crash inside handler_init each get one clear log line, and the good
# handler next to them is served.
source "$(dirname "$0")/functions.sh"
requires cc qemu-img

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
[ "$(grep -c 'not loaded' "$L")" -eq 6 ] || fail "expected exactly one line per bad plugin"

cli file create good.img size 1M >/dev/null
qemu-img info "$NBD/file/good.img" | grep -q 'virtual size: 1 MiB' || fail "good handler not served"
pass "the good handler is served next to six bad ones"
