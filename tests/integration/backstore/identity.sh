#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
# Backstore test (every backend): saveconfig.json records which backing
# object a backstore is (file: device, inode, birth time; gluster: volume id and
# gfid; rbd: pool id and image id). When another runner deletes the object
# and makes a new one under the same name, this runner refuses to serve
# the stranger (the NBD client gets an error naming the reason), `info`
# warns, and `delete` leaves the stranger alone, until `nbd-cli TYPE import
# KEY` adopts the new object; importing an unchanged object is still
# refused as a duplicate. A vanished object is shown by `info`, and its
# delete drops the entry.
source "$(dirname "$0")/../functions.sh"
source "$(dirname "$0")/../backstore.sh"
requires qemu-io nbdinfo python3

bs_start_runner
bs_create id/a.img size 8M
KEY=$(bs_key id/a.img)
qemu-io -f raw -c 'write -P 0x11 0 1M' "$(bs_uri id/a.img)" >/dev/null

identity() {  # prints the extras of KEY in saveconfig.json as "k=v ..."
  python3 - "$T/state/saveconfig.json" "$BACKEND" "$KEY" <<'PY'
import json, sys
for b in json.load(open(sys.argv[1]))["backstores"]:
    if b["type"] == sys.argv[2] and b["key"] == sys.argv[3]:
        print(" ".join("%s=%s" % kv for kv in sorted(b["extras"].items())))
PY
}
first=$(identity)
case $BACKEND in
  file) want='^(born=[0-9]+\.[0-9]{9} )?device=[0-9]+ inode=[0-9]+$' ;;
  gluster) want='^gfid=[0-9a-f-]{36} volume_id=[0-9a-f-]{36}$' ;;
  rbd) want='^image_id=[0-9a-f]+ pool_id=[0-9]+$' ;;
esac
[[ $first =~ $want ]] || fail "saveconfig.json extras for $KEY: '$first'"
shown=$(cli "$BACKEND" info "$KEY" | sed -n 's/^object: *//p' | tr ' ' '\n' | sort | xargs)
[ "$shown" = "$first" ] || { cli "$BACKEND" info "$KEY"; fail "info shows the object as '$shown'"; }
cli --json "$BACKEND" info "$KEY" | python3 -c 'import json, sys
o = json.load(sys.stdin)["object"]
print(" ".join("%s=%s" % kv for kv in sorted(o.items())))' | grep -qx "$first" || fail "info --json: object"
pass "saveconfig.json records the object's identity, nbd-cli info shows it: $first"

# A second runner on the same storage replaces the object: import, delete,
# create again (bigger), fill with another pattern.
bs_start_second_runner
"$CLI" "$BACKEND" import "$KEY" $H2 >/dev/null || fail "second runner: import"
"$CLI" "$BACKEND" delete "$KEY" $H2 >/dev/null || fail "second runner: delete"
"$CLI" "$BACKEND" create "$KEY" size 16M $H2 >/dev/null || fail "second runner: create again"
qemu-io -f raw -c 'write -P 0x22 0 1M' "nbd://127.0.0.1:$IO2/$BACKEND/$KEY" >/dev/null ||
  fail "second runner: write"
"$CLI" "$BACKEND" import "$KEY" $H2 >/dev/null 2>"$T/err" && fail "second runner: re-import of the same object succeeded"
grep -q "already exists" "$T/err" || { cat "$T/err"; fail "second runner: duplicate import message"; }
kill -TERM $R2; wait $R2 || fail "second runner did not stop cleanly"
pass "a second runner replaced $KEY (delete, create, write)"

if LIBNBD_DEBUG=1 nbdinfo "$(bs_uri id/a.img)" >"$T/info" 2>&1; then
  cat "$T/info"; fail "the replaced object was served"
fi
grep -q "replaced since it was registered" "$T/info" || { cat "$T/info"; fail "the client was not told why"; }
grep -q "not served: its backing object was replaced" "$T/log/nbd-runner.log" ||
  fail "no log line for the refusal"
[ "$(identity)" = "$first" ] || fail "the refusal changed saveconfig.json"
pass "the replaced object is not served; the client and the log say why"

cli "$BACKEND" info "$KEY" >"$T/out" 2>"$T/err" || fail "info of a replaced object failed"
grep -q "warning: .*backing object was replaced since it was registered" "$T/err" ||
  { cat "$T/err"; fail "info does not warn of the replaced object"; }
cli --json "$BACKEND" info "$KEY" | python3 -c 'import json, sys
assert "replaced" in json.load(sys.stdin)["object_problem"]' || fail "info --json: object_problem"
expect_fail 1 "not deleting $BACKEND/$KEY: its backing object was replaced.*import" \
  cli "$BACKEND" delete "$KEY"
[ "$(identity)" = "$first" ] || fail "the refused delete changed saveconfig.json"
pass "info warns of the replaced object and delete leaves it alone"

cli "$BACKEND" import "$KEY" >/dev/null || fail "import of the replaced object"
second=$(identity)
[ "$second" != "$first" ] && [[ $second =~ $want ]] || fail "import kept the old identity: '$second'"
cli --json "$BACKEND" info "$KEY" | grep -q '"size": 16777216' || fail "import did not take the new size"
qemu-io -f raw -c 'read -P 0x22 0 1M' "$(bs_uri id/a.img)" | grep -q 'read 1048576' ||
  fail "the adopted object does not hold the second runner's data"
expect_fail 1 "already exists" cli "$BACKEND" import "$KEY"
pass "import adopts the new object (size, identity, data); a second import is a duplicate"

# The object vanishes (removed by another runner, say): info says so, and
# delete drops the entry.
cli --json "$BACKEND" info "$KEY" | grep -q '"object_problem": null' || fail "object_problem of a sound object"
bs_start_second_runner
"$CLI" "$BACKEND" delete "$KEY" $H2 >/dev/null || fail "second runner: delete"
kill -TERM $R2; wait $R2 || fail "second runner did not stop cleanly"
cli "$BACKEND" info "$KEY" >"$T/out" 2>"$T/err" || fail "info of a missing object failed"
grep -q "warning: .*backing object cannot be found" "$T/err" ||
  { cat "$T/err"; fail "info does not warn of the missing object"; }
cli "$BACKEND" delete "$KEY" >/dev/null || fail "delete of a backstore whose object vanished"
expect_fail 1 "does not exist" cli "$BACKEND" info "$KEY"
pass "a vanished object is shown by info; its delete drops the entry"
