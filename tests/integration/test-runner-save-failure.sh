#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
# Test that a change the runner cannot write to saveconfig.json is refused
# with the cause and leaves nothing half done: a create is rolled back (its
# new file removed, never listed or served), a map leaves the record as it
# was, a delete says plainly what it did and did not persist, and the
# runner goes on once saveconfig.json can be written again; a create whose
# save has not finished is neither deleted nor served meanwhile, while
# info, list and NBD_OPT_LIST still answer. The faults: a directory, then
# a FIFO, where the runner writes saveconfig.json.tmp.
source "$(dirname "$0")/functions.sh"
requires nbdinfo python3

start_runner
cli file create kept.img size 1M >/dev/null
cp "$T/state/saveconfig.json" "$T/saved.json"
mkdir "$T/state/saveconfig.json.tmp"

expect_fail 1 "create file/new.img: write .*saveconfig.json.tmp: Is a directory" \
  cli file create new.img size 1M
[ ! -e "$T/files/new.img" ] || fail "the failed create left its file behind"
cli file list all | grep -q new.img && fail "the failed create is listed"
nbdinfo --list "$NBD" | grep -q "file/new.img" && fail "the failed create is served"
grep -q "registered but could not persist, rolling back" "$T/log/nbd-runner.log" ||
  fail "the roll back was not logged"
cmp -s "$T/saved.json" "$T/state/saveconfig.json" || fail "saveconfig.json changed"
pass "a create that cannot be saved is refused with the cause and rolled back"

out=$(rpc_call 5 file kept.img host-a)
grep -q "^status 21 .*saveconfig.json.tmp: Is a directory" <<<"$out" ||
  fail "a map that cannot be saved was answered: $out"
cli --json file info kept.img | grep -q '"status": "created"' || fail "the failed map left its state"
cmp -s "$T/saved.json" "$T/state/saveconfig.json" || fail "saveconfig.json changed"
pass "a map that cannot be saved is refused and leaves the record as it was"

expect_fail 1 "file/kept.img and its backing object are deleted, but saveconfig.json still lists it" \
  cli file delete kept.img
[ ! -e "$T/files/kept.img" ] || fail "the delete's message is wrong: the file is still there"
pass "a delete that cannot be saved says the backing object is gone and the record lingers"

rmdir "$T/state/saveconfig.json.tmp"
cli file create new.img size 1M >/dev/null
grep -q '"key": "new.img"' "$T/state/saveconfig.json" || fail "new.img not saved"
grep -q '"key": "kept.img"' "$T/state/saveconfig.json" && fail "the deleted kept.img still saved"
stop_runner
start_runner
[ "$(cli file list all | grep -c "img")" = 1 ] && cli file info new.img >/dev/null ||
  fail "after a restart the registry is not new.img alone"
pass "once saveconfig.json can be written the next change saves the whole registry"

# A FIFO holds the save of a create until something reads it: meanwhile
# the new backstore can be neither deleted nor served; once read, the
# save fails (fsync of a FIFO) and the create is rolled back.
mkfifo "$T/state/saveconfig.json.tmp"
cli file create held.img size 1M >"$T/held.out" 2>&1 &
CREATE=$!
for _ in $(seq 100); do [ -e "$T/files/held.img" ] && break; sleep 0.1; done
[ -e "$T/files/held.img" ] || fail "the create did not reach its save"
expect_fail 1 "backstore file/held.img is being created or deleted" timeout 10 "$CLI" file delete held.img host "$RPC"
timeout 10 nbdinfo "$NBD/file/held.img" >/dev/null 2>&1 && fail "a backstore not yet saved was served"
listed=$(timeout 10 "$CLI" file list all host "$RPC") && grep -q new.img <<<"$listed" ||
  fail "list did not answer while a save was held"
grep -q held.img <<<"$listed" && fail "a create not yet saved is listed"
timeout 10 "$CLI" file info new.img host "$RPC" >/dev/null || fail "info waited for the held save"
timeout 10 nbdinfo --list "$NBD" | grep -q "file/new.img" ||
  fail "NBD_OPT_LIST waited for the held save"
[ -e "$T/files/held.img" ] || fail "the refused delete removed the file"
timeout 10 cat "$T/state/saveconfig.json.tmp" >/dev/null
rc=0
wait $CREATE || rc=$?
[ $rc -eq 1 ] && grep -q "create file/held.img: fsync .*saveconfig.json.tmp" "$T/held.out" ||
  { cat "$T/held.out"; fail "the held create did not fail with the cause (exit $rc)"; }
[ ! -e "$T/files/held.img" ] || fail "the failed create left its file"
rm -f "$T/state/saveconfig.json.tmp"  # the failed save already removed it
cli file create held.img size 1M >/dev/null || fail "create after the FIFO is gone"
pass "a create is not deleted or served until saved, reads still answer; a failed save rolls it back"
