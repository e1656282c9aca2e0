#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
# High availability, the control plane: a backstore registered on a runner
# set (issue 28). Three runners share one file directory (as runners share
# a Gluster volume or a Ceph pool); a fourth has its own, so registering
# there fails. create/import with ha are all or nothing, every runner
# records the whole set, info shows which runners answer, delete goes from
# every runner and is refused while one is down unless forced, and a
# runner that comes back after a forced delete does not serve the record.
source "$(dirname "$0")/functions.sh"
requires nbdinfo qemu-io

source "$(dirname "$0")/ha_members.sh"

start_member A
start_member B
start_member C
start_member D "$T/other-files"
A=127.0.0.1:$PORT_A B=127.0.0.1:$PORT_B C=127.0.0.1:$PORT_C D=127.0.0.1:$PORT_D

# Usage errors
expect_fail 2 "ha 3 needs 3 runners in 'host H1,H2,...'; 2 given" \
  "$CLI" file create u.img size 1M ha 3 host "$A,$B"
expect_fail 2 "'host' takes one runner for info" "$CLI" file info u.img host "$A,$B"
expect_fail 2 "names 127.0.0.1:$PORT_A twice" "$CLI" file create u.img size 1M host "$A,$A"
pass "ha needs as many runners as it says, a list only where it registers, no runner twice"

# Two names of one runner are one runner: told apart by its id
expect_fail 1 "127.0.0.1:$PORT_A and localhost:$PORT_A are the same runner" \
  "$CLI" file create u.img size 1M ha 2 host "$A,localhost:$PORT_A"
[ ! -e "$T/files/u.img" ] || fail "the refused create left a file"
pass "two addresses of one runner refused before anything is created"

# create ha 3: one object, the set recorded everywhere
out=$("$CLI" file create d.img size 8M ha 3 host "$A,$B,$C")
grep -q "created file/d.img (8 MiB) on 3 runners: $A, $B, $C" <<<"$out" || fail "create: $out"
for m in A B C; do
  [ "$(saved_set $m d.img)" = "$A,$B,$C" ] || fail "runner $m records the set as '$(saved_set $m d.img)'"
done
[ "$(ls "$T/files")" = d.img ] || fail "files: $(ls "$T/files")"
pass "create ha 3: the object created once, each runner's saveconfig.json records the whole set"

# The same object through two runners: written through A, read through C
qemu-io -f raw -c "write -P 0x5a 1M 64k" "$NBD_A/file/d.img" >/dev/null
qemu-io -f raw -c "read -P 0x5a 1M 64k" "$NBD_C/file/d.img" | grep -q "read 65536/65536" ||
  fail "C did not read what A wrote"
pass "written through one runner of the set, read back through another"

# info shows the set and who answers
out=$("$CLI" file info d.img host "$B")
grep -q "^runner set:  $A (answers), $B (this one), $C (answers)$" <<<"$out" || fail "info: $out"
"$CLI" --json file info d.img host "$B" | python3 -c '
import json, sys
o = json.load(sys.stdin)
assert o["runners"] == sys.argv[1].split(","), o["runners"]
assert o["runners_answering"] == o["runners"], o["runners_answering"]' "$A,$B,$C"
"$CLI" file list host "$B" | grep -Eq "^d.img +8 MiB +created +rw +- +- +3/3 " || fail "list: $("$CLI" file list host "$B")"
stop_member C
out=$("$CLI" file info d.img host "$A")
grep -q "^runner set:  $A (this one), $B (answers), $C (does not answer: " <<<"$out" || fail "info, C down: $out"
"$CLI" file list host "$A" | grep -Eq "^d.img +8 MiB +created +rw +- +- +2/3 " || fail "list, C down: $("$CLI" file list host "$A")"
"$CLI" --json file list host "$A" | python3 -c '
import json, sys
b = [b for b in json.load(sys.stdin)["backstores"] if b["key"] == "d.img"][0]
assert b["runners_answering"] == sys.argv[1].split(","), b' "$A,$B"
pass "info and list (and --json) show the runner set and which runners answer"

# create with a runner down: refused, nothing anywhere
expect_fail 3 "not creating file/e.img \(nothing changed\).*runner $C" \
  "$CLI" file create e.img size 1M ha 3 host "$A,$B,$C"
[ ! -e "$T/files/e.img" ] || fail "a file was left"
"$CLI" file list host "$A" | grep -q e.img && fail "A lists e.img"
pass "create with a runner down refused, naming it, before anything is created"

# a runner that cannot register it (D has another file directory): rolled back
expect_fail 1 "create of file/f.img refused: runner $D: .*rolled back on $B, $A" \
  "$CLI" file create f.img size 1M ha 3 host "$A,$B,$D"
[ ! -e "$T/files/f.img" ] || fail "the rolled-back create left its object"
for m in A B; do "$CLI" file list host "$(eval echo \$$m)" | grep -q f.img && fail "$m lists f.img"; done
pass "create refused by one runner is rolled back on every runner it got to, object removed"

# import ha 2 of an existing object
qemu-img create -f raw "$T/files/old.img" 4M >/dev/null
out=$("$CLI" file import old.img ha 2 host "$A,$B")
grep -q "imported file/old.img on 2 runners: $A, $B" <<<"$out" || fail "import: $out"
[ "$(saved_set B old.img)" = "$A,$B" ] || fail "B records old.img's set as '$(saved_set B old.img)'"
expect_fail 1 "import of file/nothere.img refused: runner $A: .*nothing to roll back" \
  "$CLI" file import nothere.img ha 2 host "$A,$B"
pass "import ha 2 registers an existing object on both runners; a failed import changes nothing"

# delete with C down: refused, naming it; with force, gone from A and B
expect_fail 1 "not deleting file/d.img: runners of its set do not answer: $C" \
  "$CLI" file delete d.img host "$A"
[ -e "$T/files/d.img" ] && [ "$(saved_set B d.img)" = "$A,$B,$C" ] || fail "the refused delete changed something"
out=$("$CLI" file delete d.img force host "$A")
grep -q "deleted file/d.img on 2 runners: $A, $B" <<<"$out" || fail "delete force: $out"
[ ! -e "$T/files/d.img" ] || fail "the object survived the delete"
[ -z "$(saved_set B d.img)" ] && ! grep -q "\"d.img\"" "$T/B/state/saveconfig.json" || fail "B still records d.img"
pass "delete with a runner down refused unless forced; forced, it goes from every runner that answers"

# C comes back with its record: it does not serve it, and deleting it there cleans up
start_member C "$T/files" "$PORT_C" "${NBD_C##*:}"
if nbdinfo "$NBD_C/file/d.img" >"$T/out" 2>&1; then fail "C served the force-deleted backstore"; fi
grep -q "d.img" "$T/C/log/nbd-runner.log" || fail "C logged nothing about the refused open"
# Its record may be out of date in a way it cannot tell (the others do not
# hold it): delete through it is refused, forget clears it.
expect_fail 1 "not deleting file/d.img: runner 127.0.0.1:[0-9]+ of its set does not hold it" \
  "$CLI" file delete d.img host "$C"
"$CLI" file forget d.img host "$C" >/dev/null
grep -q "\"d.img\"" "$T/C/state/saveconfig.json" && fail "C still records d.img"
pass "a runner back after a forced delete refuses the record's object at open; delete through it is refused, forget clears it"

# delete of old.img from B: gone from both, the object too
"$CLI" file delete old.img host "$B" >/dev/null
grep -q old.img "$T/A/state/saveconfig.json" "$T/B/state/saveconfig.json" && fail "old.img still recorded"
[ ! -e "$T/files/old.img" ] || fail "old.img survived"
pass "delete from any runner of the set removes it from all"

# a hand-edited set is checked at start
python3 - "$T/A/state/saveconfig.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
d["backstores"].append({"type": "file", "key": "x.img", "size": 1048576, "block_size": 512,
                        "runners": ["no port here"]})
json.dump(d, open(sys.argv[1], "w"))
PY
stop_member A
rc=0
timeout 60 "$RUNNER" --foreground --rpc-host 127.0.0.1 --rpc-port 0 --io-host 127.0.0.1 --io-port 0 \
  --state-dir "$T/A/state" --log-dir "$T/A/log" --file-dir "$T/files" \
  --control-socket "$T/A/control.sock" --handler-dir "${HANDLER_DIR:-$NBDR_BUILD/lib/nbd-runner}" \
  >"$T/refused.out" 2>&1 || rc=$?
[ $rc -ne 0 ] && grep -q "'runners'" "$T/refused.out" || { cat "$T/refused.out"; fail "a bad runner set was loaded"; }
pass "a saveconfig.json record with a bad runner set stops the start, naming it"
