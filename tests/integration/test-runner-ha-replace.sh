#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
# High availability, replace-node (issue 28): nbd-cli TYPE replace KEY OLD
# NEW swaps one runner of a backstore's runner set for another, with the
# old runner alive or dead; refusals change nothing; a runner replaced
# while it was down keeps an out-of-date record that delete refuses to act
# on (it would remove the object the others serve) and forget clears.
source "$(dirname "$0")/functions.sh"
requires nbdsh qemu-io
source "$(dirname "$0")/ha_members.sh"

for m in A B C D; do start_member $m; done
start_member E "$T/other-files"
A=127.0.0.1:$PORT_A B=127.0.0.1:$PORT_B C=127.0.0.1:$PORT_C D=127.0.0.1:$PORT_D E=127.0.0.1:$PORT_E

"$CLI" file create r.img size 4M ha 3 host "$A,$B,$C" >/dev/null
qemu-io -f raw -c "write -P 0x3c 0 64k" "$NBD_A/file/r.img" >/dev/null

# Refusals: nothing changes
expect_fail 1 "$D is not in the runner set of file/r.img: $A, $B, $C" \
  "$CLI" file replace r.img "$D" "$E" host "$A"
expect_fail 1 "$B is already in the runner set of file/r.img" \
  "$CLI" file replace r.img "$C" "$B" host "$A"
expect_fail 1 "not replacing $C in file/r.img \(nothing changed\).*runner $E: " \
  "$CLI" file replace r.img "$C" "$E" host "$A"
grep -q '"r.img"' "$T/E/state/saveconfig.json" 2>/dev/null && fail "E kept a record"
for m in A B C; do [ "$(saved_set $m r.img)" = "$A,$B,$C" ] || fail "$m's set changed: $(saved_set $m r.img)"; done
pass "replace refuses a runner not in the set, one already in it, and a new runner that cannot register it; nothing changes"

# An old runner still serving it refuses to forget it: nothing changes
nbdsh -u "$NBD_C/file/r.img" -c 'import time; time.sleep(6)' &
held=$!
sleep 1
expect_fail 1 "not replacing $C in file/r.img \(nothing changed\).*runner $C: .*in use by 1 NBD connection" \
  "$CLI" file replace r.img "$C" "$D" host "$A"
grep -q '"r.img"' "$T/D/state/saveconfig.json" 2>/dev/null && fail "D kept a record"
[ "$(saved_set C r.img)" = "$A,$B,$C" ] || fail "C's record changed"
wait $held
pass "an old runner still serving the backstore refuses to forget it, and the replace is undone"

# Replace with the old runner alive
out=$("$CLI" file replace r.img "$C" "$D" host "$A")
grep -q "^replaced $C by $D in the runner set of file/r.img; runner set: $A, $B, $D$" <<<"$out" || fail "replace: $out"
for m in A B D; do [ "$(saved_set $m r.img)" = "$A,$B,$D" ] || fail "$m's set: $(saved_set $m r.img)"; done
grep -q '"r.img"' "$T/C/state/saveconfig.json" && fail "C still records r.img"
qemu-io -f raw -c "read -P 0x3c 0 64k" "$NBD_D/file/r.img" | grep -q "read 65536/65536" ||
  fail "D does not serve the data"
pass "replace with the old runner up: the new one serves the same data, the old one forgot it, every set updated"

# Replace a dead runner
stop_member B
out=$("$CLI" file replace r.img "$B" "$C" host "$A")
grep -q "replaced $B by $C in the runner set of file/r.img ($B did not answer: it keeps its out-of-date record" <<<"$out" ||
  fail "replace of a dead runner: $out"
for m in A C D; do [ "$(saved_set $m r.img)" = "$A,$C,$D" ] || fail "$m's set: $(saved_set $m r.img)"; done
pass "replace of a runner that does not answer: the others take the new set, and the message says what is left"

# The dead runner comes back with its out-of-date record
start_member B "$T/files" "$PORT_B" "${NBD_B##*:}"
expect_fail 1 "not deleting file/r.img: runner 127.0.0.1:[0-9]+ records another runner set for it \($A, $C, $D\)" \
  "$CLI" file delete r.img host "$B"
[ -e "$T/files/r.img" ] || fail "the refused delete removed the object"
"$CLI" file forget r.img host "$B" | grep -q "forgot file/r.img (its backing object left in place)" ||
  fail "forget on B"
[ -e "$T/files/r.img" ] && ! grep -q '"r.img"' "$T/B/state/saveconfig.json" || fail "forget on B"
pass "delete through an out-of-date record is refused (the object stays); forget clears the record"

# A mapping on another runner of the set stops a delete before anything changes
RPC_PORT=$PORT_C rpc_map_as other-host file r.img /dev/nbd3
expect_fail 1 "not deleting file/r.img: it is mapped on runner $C; unmap it there first" \
  "$CLI" file delete r.img host "$A"
for m in A C D; do [ "$(saved_set $m r.img)" = "$A,$C,$D" ] || fail "the refused delete changed $m"; done
RPC_PORT=$PORT_C rpc_call 7 file r.img "" "" u64:0 | grep -q "^status 0 " || fail "clearing the mapping on C"
pass "delete is refused while another runner of the set records a mapping, and changes nothing"

out=$("$CLI" file delete r.img host "$C")
grep -q "deleted file/r.img on 3 runners" <<<"$out" || fail "delete: $out"
[ ! -e "$T/files/r.img" ] || fail "r.img survived"
pass "delete after the replaces goes from every runner of the new set"
