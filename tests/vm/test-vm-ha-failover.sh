#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
# High availability, failover (issue 28), in a qemu guest with the kernel
# nbd driver: a backstore registered on two runners that share a file
# directory is mapped through the first (the guest learns the set from
# it). Two failures, each while the guest writes: runner A is killed
# (kill -9, never restarted: its connection resets at once), then runner
# B, which took the device over, is frozen (SIGSTOP: its connection stays
# open and nothing answers, found through the kernel's request timeout).
# Each time nbd-clid moves the device to another runner of the set, the
# write completes with no error and every byte reads back; once A and B
# are back, nbd-clid clears their records of the mapping; unmap by device
# then goes to the runner serving it.
source "$(dirname "$0")/../integration/functions.sh"
source "$(dirname "$0")/vm-functions.sh"
source "$(dirname "$0")/../integration/ha_members.sh"
requires python3
plain_build_only "a 35 s guest suite; test-vm-ha-fence runs failover here"

start_members A B C
"$CLI" file create f.img size 64M ha 3 host "$A,$B,$C" >/dev/null
cat >"$T/guest.sh" <<GUEST
nbd-clid --foreground --interval 1 --timeout 2 >/tmp/clid.log 2>&1 &
dev=\$(nbd-cli file map f.img timeout 4 dead-timeout 120 host 10.0.2.2:$PORT_A 2>/tmp/err) || r "FAIL map: \$(cat /tmp/err)"
ok set-learned grep -q '"10.0.2.2:$PORT_C"' /var/lib/nbd-cli/mappings.json
# One runner of the set serves it at a time: a second map through B is refused
if nbd-cli file map f.img host 10.0.2.2:$PORT_B >/dev/null 2>/tmp/err; then r "FAIL second-map: mapped through B too"; else grep -q "file/f.img is mapped through runner 10.0.2.2:$PORT_A on \$dev" /tmp/err && r "ok second-map-refused" || r "FAIL second-map: \$(cat /tmp/err)"; fi
ok second-map-undone sh -c "nbd-cli --json file info f.img host 10.0.2.2:$PORT_B | grep -q '\"status\": *\"created\"'"
for n in 0 1 2; do dd if=/dev/urandom of=/tmp/p\$n bs=1M count=16 2>/dev/null; done
ok write-0 dd if=/tmp/p0 of=\$dev bs=1M oflag=direct conv=fsync
# write_during N WHAT: writes pattern N at 16 MiB * N while the host does
# WHAT to the runner serving the device (it acts on "RESULT go-N")
write_during() {
  r "go-\$1"
  t0=\$(cut -d' ' -f1 /proc/uptime)
  ok write-\$1-during-\$2 dd if=/tmp/p\$1 of=\$dev bs=64k seek=\$((256 * \$1)) oflag=direct conv=fsync
  t1=\$(cut -d' ' -f1 /proc/uptime)
  r "write-time \$2 \$(echo "\$t0 \$t1" | awk '{printf "%.1f", \$2 - \$1}') s"
}
write_during 1 kill
ok moved-to-b grep -q "moved file/f.img from 10.0.2.2:$PORT_A to 10.0.2.2:$PORT_B" /tmp/clid.log
write_during 2 sigstop
ok moved-to-c grep -q "moved file/f.img from 10.0.2.2:$PORT_B to 10.0.2.2:$PORT_C" /tmp/clid.log
# The host thaws B and restarts A: nbd-clid clears their records of the
# mapping, which would otherwise keep it mapped there.
r "thaw"
# (Each runner's record is checked on the host: cleared here, or found
# already cleared there.)
ok_within left-cleared 30 sh -c "! grep -q '\"left\"' /var/lib/nbd-cli/mappings.json"
ok cleared-on-a grep -q "clear.* the old mapping of file/f.img at 10.0.2.2:$PORT_A" /tmp/clid.log
ok cleared-on-b grep -q "clear.* the old mapping of file/f.img at 10.0.2.2:$PORT_B" /tmp/clid.log
for n in 0 1 2; do
  ok read-\$n sh -c "dd if=\$dev bs=1M skip=\$((16 * n)) count=16 iflag=direct 2>/dev/null | cmp - /tmp/p\$n"
done
ok serving-recorded grep -q '"serving": *"10.0.2.2:$PORT_C"' /var/lib/nbd-cli/mappings.json
kill %1
ok unmap-by-device nbd-cli file unmap \$dev
ok state-forgotten sh -c "! grep -q f.img /var/lib/nbd-cli/mappings.json"
cat /tmp/clid.log | while read -r l; do r "clid: \$l"; done
GUEST
start_guest "$T/guest.sh"
wait_guest_line 'RESULT go-1' 240
kill_now PID_A
wait_guest_line 'RESULT go-2' 240
kill -STOP "$PID_B"
wait_guest_line 'RESULT thaw' 240
kill -CONT "$PID_B"
start_member A "$T/files" "$PORT_A" "${NBD_A##*:}"
finish_guest
for m in A B; do
  grep -q '"status": "created"' "$T/$m/state/saveconfig.json" || fail "runner $m still records the mapping"
done
pass "guest: A killed, then B frozen, each during a write: nbd-clid moved the device to B, then C; no I/O error, every byte read back; A and B's records cleared once back; unmap went to C"
grep -q "mapped on /dev/nbd0 of" "$T/C/log/nbd-runner.log" || fail "C never recorded the mapping"
[ "$(saved_set C f.img)" = "$A,$B,$C" ] || fail "C's set changed"
grep -q '"status": "created"' "$T/C/state/saveconfig.json" || fail "C's record is not back to created after the unmap"
pass "runner C recorded the moved mapping and cleared it at unmap"
grep -a '^RESULT write-time' "$T/results" | sed 's/^RESULT /failover, /'
