#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
# Test nbd-cli's contract: results on stdout, errors on stderr with a
# sentence, non-zero exit status (1 failed, 2 usage, 3 unreachable), the
# size parser, --json on both paths, and handler-not-loaded errors.
source "$(dirname "$0")/functions.sh"
requires python3 nbdinfo

# Only the file handler, so the gluster and rbd types are "not loaded".
mkdir -p "$T/handlers"
cp "$NBDR_BUILD/lib/nbd-runner/libfile_handler.so" "$T/handlers/"
HANDLER_DIR="$T/handlers" start_runner

# Sizes.
for s in 1048576 512B 4K 4KiB 1M 1MiB 1G 1GiB 1.5G 1T; do
  cli file create "sizes/$s.img" size "$s" >/dev/null || fail "size $s refused"
done
[ "$(cli --json file info sizes/1.5G.img | python3 -c 'import json,sys; print(json.load(sys.stdin)["size"])')" = 1610612736 ] \
  || fail "1.5G is not 1610612736 bytes"
pass "sizes 1048576 512B 4K 4KiB 1M 1MiB 1G 1GiB 1.5G 1T accepted"
expect_fail 2 "size 'junk': unknown unit|expected a number" cli file create j.img size junk
expect_fail 2 "cannot be empty" cli file create z.img size 0
expect_fail 2 "negative" cli file create n.img size -1G
expect_fail 2 "multiple of 512" cli file create m.img size 1000
expect_fail 2 "too large" cli file create o.img size 99999999999999999999
expect_fail 2 "too large" cli file create o.img size 9E
pass "junk, zero, negative, unaligned and overflowing sizes refused with the reason"

# Runner-side failures: exit 1, sentence on stderr, nothing on stdout.
expect_fail 1 "already exists" cli file create sizes/4K.img size 4K
[ ! -s "$T/out" ] || fail "error printed on stdout"
expect_fail 1 "backstore file/nope.img does not exist" cli file info nope.img
expect_fail 1 "backstore file/nope.img does not exist" cli file delete nope.img
expect_fail 1 "handler 'gluster' is not loaded on this runner \(loaded: file\)" \
  cli gluster create vol/a.img size 1G
expect_fail 1 "handler 'rbd' is not loaded" cli ceph create pool/img size 1G
expect_fail 1 "handler 'rbd' is not loaded" cli rbd list
pass "runner errors: exit 1 with a sentence on stderr"

# import registers a file that already exists, never one that does not,
# and refuses a size that differs from the file's.
head -c 3M /dev/urandom >"$T/files/made-elsewhere.img"
expect_fail 1 "holds 3 MiB, not 4 MiB" cli file import made-elsewhere.img size 4M
cli file import made-elsewhere.img >/dev/null
cli --json file info made-elsewhere.img | grep -q '"size": 3145728' || fail "imported size"
expect_fail 1 "already exists" cli file import made-elsewhere.img
expect_fail 1 "No such file" cli file import never-made.img
cli --json file list | grep -q never-made && fail "a failed import was registered"
head -c 1000 /dev/urandom >"$T/files/odd.img"
expect_fail 1 "cannot import file/odd.img.*multiple of the block size" cli file import odd.img
pass "import registers existing files only, with their own size"

# A failed create removes what it made: the file and the directories it
# made for it, never one that was there before.
mkdir -p "$T/files/kept-dir"
expect_fail 1 "not enough space under .* to preallocate" cli file create new1/new2/x.img prealloc size 1P
[ ! -e "$T/files/new1" ] || fail "a failed create left new1/"
if [ "$(stat -f -c %T "$T/files")" = ext2/ext3 ]; then  # ext4: files end at 16 TiB
  expect_fail 1 "make new1/x.img under .* bytes long: File too large \(more than this file system" \
    cli file create new1/x.img size 1P
  [ ! -e "$T/files/new1" ] || fail "a failed create left new1/"
fi
expect_fail 1 "not enough space under .* to preallocate" cli file create kept-dir/p/x.img prealloc size 1P
[ -d "$T/files/kept-dir" ] && [ ! -e "$T/files/kept-dir/p" ] ||
  fail "a failed prealloc left kept-dir/p or removed kept-dir"
pass "a failed create says why and removes the directories it made, and only those"

# A FIFO is refused, never opened in a way that waits for a writer: not
# when imported, not when it took a registered file's place.
mkfifo "$T/files/pipe.img"
expect_fail 1 "is not a regular file" timeout 10 "$CLI" file import pipe.img host "$RPC"
cli file create swapped.img size 1M >/dev/null
rm "$T/files/swapped.img"
mkfifo "$T/files/swapped.img"
timeout 10 nbdinfo "$NBD/file/swapped.img" >"$T/out" 2>&1 && fail "a FIFO was served"
grep -q "swapped.img.*object was replaced" "$T/log/nbd-runner.log" \
  || { cat "$T/out"; fail "FIFO in a file's place: no sentence in the log"; }
cli file info sizes/4K.img >/dev/null || fail "runner stuck after the FIFOs"
rm "$T/files/swapped.img"
head -c 1M /dev/zero >"$T/files/swapped.img"
cli file import swapped.img >/dev/null
pass "FIFOs are refused with a sentence and hold nothing up"

# Usage errors: exit 2.
expect_fail 2 "'\.\.' is not allowed" cli file create ../escape.img size 1M
expect_fail 2 "absolute paths" cli file create /etc/passwd size 1M
expect_fail 2 "create needs 'size SIZE'" cli file create x.img
expect_fail 2 "unknown command 'frobnicate'" "$CLI" file frobnicate
expect_fail 2 "unexpected 'bogus'" cli file list bogus
expect_fail 2 "'size' given twice" cli file create twice.img size 1M size 2M
expect_fail 2 "'readonly' given twice" cli file create twice.img size 1M readonly readonly
expect_fail 2 "unknown option '--bogus'" "$CLI" --bogus file list
[ ! -e "$T/files/twice.img" ] || fail "a create with a repeated option ran"
pass "usage errors: exit 2 (repeated options and unknown global options included)"

# --help anywhere prints help and runs nothing, even on a key named help.
cli file create help size 1M >/dev/null
for h in --help -h; do
  "$CLI" file delete "$h" host "$RPC" >"$T/out" 2>&1 || fail "file delete $h failed"
  grep -q "nbd-cli file" "$T/out" || { cat "$T/out"; fail "file delete $h printed no help"; }
done
cli file info help >/dev/null || fail "'delete --help' deleted the backstore named help"
cli --version | grep -q "^nbd-cli " || fail "--version"
pass "--help prints help wherever it is and runs no command; --version works"

# The NBD URI a key gives is percent-encoded, so clients open that export.
cli file create "odd name?#%.img" size 1M >/dev/null
uri=$(cli --json file info "odd name?#%.img" |
      python3 -c 'import json,sys; print(json.load(sys.stdin)["nbd_uri"])')
[[ "$uri" == */file/odd%20name%3F%23%25.img ]] || fail "uri not encoded: $uri"
[ "$(nbdinfo --size "$uri")" = 1048576 ] || fail "nbdinfo cannot open $uri"
pass "the NBD URI of a key with ' ?#%' is percent-encoded and opens: $uri"

# Pointed at the NBD port, nbd-cli says which port it wants.
expect_fail 3 "or 127.0.0.1:$IO_PORT is not its control port, 24110 by default\)\$" \
  "$CLI" file list host "127.0.0.1:$IO_PORT"
# A change that got no answer may have happened: the message says so.
expect_fail 3 "is not its control port, 24110 by default\); it may have been carried out all the same: check with info before retrying" \
  "$CLI" file create x.img size 1M host "127.0.0.1:$IO_PORT"
pass "nbd-cli pointed at the NBD port says so; for a change, that it may have happened"

# Unreachable runner: exit 3.
expect_fail 3 "cannot reach nbd-runner at 127.0.0.1:1" "$CLI" file list host 127.0.0.1:1
pass "unreachable runner: exit 3"

# JSON on success and failure.
cli --json file list created >"$T/list.json"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert len(d["backstores"]) == 14 and all(b["status"] == "created" for b in d["backstores"]) and d["backstores"][0]["nbd_uri"].startswith("nbd://127.0.0.1:")' "$T/list.json" \
  || { cat "$T/list.json"; fail "list --json"; }
rc=0
cli --json file info nope.img >"$T/out" 2>"$T/err" || rc=$?
[ $rc -eq 1 ] || fail "json error exit status $rc"
python3 -c 'import json,sys; e=json.load(open(sys.argv[1]))["error"]; assert e["errno"] == "ENOENT" and "does not exist" in e["message"]' "$T/err" \
  || { cat "$T/err"; fail "json error"; }
pass "--json: stable objects on stdout, error objects on stderr"

# Two backstores on one object (through a symlink or a hard link inside
# the base directory) are refused: one's delete would pull the file from
# under the other's clients, and both could be mapped at once.
cli file create inside/z.img size 1M >/dev/null
ln -s inside "$T/files/lnk"
ln "$T/files/inside/z.img" "$T/files/hard.img"
expect_fail 1 "file/lnk/z.img is the same object as the registered file/inside/z.img" \
  cli file import lnk/z.img
expect_fail 1 "file/hard.img is the same object as the registered file/inside/z.img" \
  cli file import hard.img
cli --json file list | grep -Eq '"(lnk/z|hard).img"' && fail "an alias was registered"
[ -f "$T/files/hard.img" ] || fail "a refused import removed its file"
pass "an import of an object registered under another key is refused"

# Delete while a client is connected: refused, nothing lost.
python3 - "$IO_PORT" "$T/held" <<'PY' &
import os, sys, time
sys.path.insert(0, os.environ["NBDR_SRC"] + "/tests/integration")
from nbd_wire import Client
c = Client(int(sys.argv[1])); c.negotiate("file/sizes/1M.img")
open(sys.argv[2], "w").write("1"); time.sleep(3); c.close()
PY
HOLD=$!
for _ in $(seq 50); do [ -f "$T/held" ] && break; sleep 0.1; done
expect_fail 1 "in use by 1 NBD connection" cli file delete sizes/1M.img
wait $HOLD
[ -f "$T/files/sizes/1M.img" ] || fail "file removed"
pass "delete of a backstore in use is refused"
cli file delete sizes/1M.img | grep -q "deleted file/sizes/1M.img" || fail "delete after close"
[ ! -e "$T/files/sizes/1M.img" ] || fail "file still there"
pass "delete removes the registry entry and the file"

# This host's kernel has no nbd driver: map says so and changes nothing.
if [ ! -e /sys/module/nbd ]; then
  expect_fail 1 "nbd kernel module|'nbd' netlink family" cli file map sizes/4K.img
  cli --json file info sizes/4K.img | grep -q '"status": "created"' || fail "state changed"
  pass "map without the nbd module: clear error, backstore still created"
fi
if command -v setpriv >/dev/null && [ "$(id -u)" -eq 0 ]; then
  expect_fail 1 "map needs root" setpriv --reuid=65534 --regid=65534 --clear-groups \
    "$CLI" file map sizes/4K.img host "$RPC"
  pass "map as an unprivileged user: clear error"
fi
expect_fail 1 "is not mapped" cli file unmap sizes/4K.img
pass "unmap of a backstore that is not mapped: clear error"

# Long keys: the longest whose export name "file/<key>" fits NBD's 4096
# bytes is created, answered in full and served; one byte more is refused.
LONG=$(python3 -c 'k = "/".join(["k" * 200] * 20); print(k + "/" + "x" * (4091 - len(k) - 1))')
[ ${#LONG} -eq 4091 ] || fail "long key is ${#LONG} bytes"
cli file create "$LONG" size 1M >"$T/long.out" || fail "create of a 4091-byte key"
# The reply's message (4112 bytes) keeps its start and end within 4096.
grep -Eq "^created file/[k/]+ \.\.\. [k/]+/x{71} \(1 MiB\)$" "$T/long.out" &&
  [ "$(wc -c <"$T/long.out")" -le 4097 ] || fail "create's message of a 4091-byte key"
cli file info "$LONG" >/dev/null || fail "info of a 4091-byte key"
qemu-io -f raw -c 'write -P 0x4c 0 64k' -c 'read -P 0x4c 0 64k' "$NBD/file/$LONG" >"$T/qio" 2>&1 &&
  ! grep -q failed "$T/qio" || { cat "$T/qio"; fail "serving a 4091-byte key"; }
cli file delete "$LONG" >/dev/null || fail "delete of a 4091-byte key"
expect_fail 1 "its export name file/<key> would be 4097 bytes, and NBD allows 4096" \
  cli file create "${LONG}y" size 1M
[ -e "$T/files/${LONG}y" ] && fail "the refused long key left a file"
pass "a 4091-byte key is created, served and deleted; one byte more is refused before anything is made"

"$CLI" help | grep -q "nbd-cli TYPE create" || fail "help"
"$CLI" file help | grep -q "nbd-cli file create" || fail "type help"
cli version | grep -q "nbd-runner 0" || fail "version"
pass "help, TYPE help and version"

# nbd-cli list: every type at once (issue 30; before, it was "unknown
# command 'list'"), each row named TYPE/KEY, with the status filter and
# --json; a filter that matches nothing says so.
cli list >"$T/all" || fail "nbd-cli list failed"
grep -q '^TYPE/KEY ' "$T/all" && grep -q '^file/sizes/4K.img ' "$T/all" || { cat "$T/all"; fail "nbd-cli list does not name TYPE/KEY"; }
[ "$(cli --json list | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["backstores"]))')" = \
  "$(cli --json file list | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["backstores"]))')" ] ||
  fail "nbd-cli --json list and nbd-cli --json file list disagree (only file is loaded)"
cli list mapped | grep -q "^no backstores in state mapped$" || fail "nbd-cli list mapped"
expect_fail 2 "unexpected 'bogus'" cli list bogus
pass "nbd-cli list shows every type's backstores as TYPE/KEY, with its filter and --json"
