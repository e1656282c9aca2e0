#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
# Test get_option's contract (include/nbd-runner/handler.h): a handler
# reads the options it declared and the runner's offered ones (threads,
# log-dir, set even when left at their defaults), and gets NULL for any
# other option, though the runner has it (issue 24: it used to get every
# runner option, so a handler could depend on another's configuration).
# And nbd-runner --help lists a third-party handler's options from its
# config help, without loading it to serve (issue 24: the help text was
# hard-coded for the bundled handlers).
source "$(dirname "$0")/functions.sh"
requires cc

H="$T/handlers"
mkdir -p "$H"
cp "$NBDR_BUILD/lib/nbd-runner/libfile_handler.so" "$H/"
cat >"$T/opts.c" <<'C'
#include <nbd-runner/handler.h>
#include <stddef.h>
static const char *show(const struct nbdr_services *s, const char *n) {
  const char *v = s->get_option(s->ctx, n);
  return v ? v : "(null)";
}
static int ld(const struct nbdr_services *s, void **st, char *e, size_t n) {
  (void)e; (void)n;
  s->log(s->ctx, NBDR_LOG_INFO, NULL, "seen opts-x=%s file-dir=%s handler-dir=%s threads=%s log-dir=%s",
         show(s, "opts-x"), show(s, "file-dir"), show(s, "handler-dir"), show(s, NBDR_OPTION_THREADS),
         show(s, NBDR_OPTION_LOG_DIR));
  *st = (void *)s;
  return 0;
}
static void unld(void *st) { (void)st; }
static int mk(void *st, const char *k, const struct nbdr_create_params *p, char *e, size_t n) { (void)st; (void)k; (void)p; (void)e; (void)n; return 95; }
static int rm(void *st, const char *k, char *e, size_t n) { (void)st; (void)k; (void)e; (void)n; return 95; }
static int op(void *st, const char *k, int ro, struct nbdr_export_info *i, void **x, char *e, size_t n) { (void)st; (void)k; (void)ro; (void)i; (void)x; (void)e; (void)n; return 95; }
static void cl(void *x) { (void)x; }
static void sub(void *x, struct nbdr_request *r) { (void)x; r->complete(r, 95); }
static const char *const opts[] = {"opts-x", NULL};
static struct nbdr_handler h = { NBDR_HANDLER_MIN_STRUCT_SIZE, NBDR_HANDLER_ABI_VERSION, "opts",
  "options test", "1", "opts-x=V  a test option\n", opts, ld, unld, mk, rm, op, cl, sub };
const struct nbdr_handler *handler_init(const struct nbdr_services *s) { (void)s; return &h; }
C
cc -shared -fPIC -I"$NBDR_SRC/include" -o "$H/libopts_handler.so" "$T/opts.c"

HANDLER_DIR="$H" start_runner --opts-x 42
L="$T/log/nbd-runner.log"
line=$(grep -o 'seen opts-x=.*' "$L") || { cat "$L"; fail "the options handler did not load"; }
echo "$line"
case "$line" in
  *"opts-x=42 "*) ;; *) fail "a declared option was not readable" ;;
esac
case "$line" in
  *"file-dir=(null) handler-dir=(null) "*) ;;
  *) fail "another handler's option or a runner-only option was readable" ;;
esac
case "$line" in
  *"threads=8 log-dir=$T/log"*) ;; *) fail "the offered options threads and log-dir were not set" ;;
esac
pass "get_option: declared and offered options only ($line)"

"$RUNNER" --help --handler-dir "$H" >"$T/help" 2>&1 || fail "nbd-runner --help failed"
grep -q -- '--opts-x=V  a test option' "$T/help" || { cat "$T/help"; fail "--help lacks the handler's option"; }
grep -q -- '--file-dir=DIR' "$T/help" || { cat "$T/help"; fail "--help lacks the file handler's options"; }
! grep -q 'seen opts-x' "$T/help" || fail "--help loaded the handler (its load() ran)"
pass "--help lists every handler's options from its declaration, loading none"

# Unknown options: a mistake in a namespace a loaded handler (its type or
# its options' prefix) or the runner owns, or a typing mistake away from
# one, is refused; one in a namespace nobody here owns is taken for a
# handler not installed on this node, warned about and ignored, whoever's
# handler it is (issue 24: only the bundled handlers' prefixes were known).
check() {  # want-exit pattern options...
  local want=$1 pattern=$2 rc=0
  shift 2
  mkdir -p "$T/s2"
  "$RUNNER" --check-config --state-dir "$T/s2" --handler-dir "$H" "$@" >"$T/check" 2>&1 || rc=$?
  [ $rc -eq "$want" ] && grep -q -- "$pattern" "$T/check" ||
    { cat "$T/check"; fail "--check-config $*: exit $rc, wanted $want and '$pattern'"; }
}
check 2 "unknown option 'opts-y'" --opts-y 1
check 2 "unknown option 'file-dri'" --file-dri x
check 2 "unknown option 'handshake-timout'" --handshake-timout 5
check 2 "unknown option 'hanlder-dir'" --hanlder-dir /x  # typing mistakes in the first word
check 2 "unknown option 'fiel-io'" --fiel-io threads
check 0 "option 'acme-pool' ignored: its handler is not loaded" --acme-pool p1
pass "unknown options: refused where a loaded handler or the runner owns the name, warned otherwise"
