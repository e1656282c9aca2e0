#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
# Test a gluster key that is a symbolic link on the volume, as the file
# handler treats one: it is served through its target, its identity in
# saveconfig.json is the target's (so a target replaced behind the
# runner's back is refused, and a runner that has the target registered
# refuses the link as a second backstore on one file), and delete removes
# the link, never the file it points to. The link is made with libgfapi
# itself (python ctypes).
source "$(dirname "$0")/functions.sh"
NBDR_BACKEND=gluster
source "$(dirname "$0")/backstore.sh"
requires qemu-io python3

bs_start_runner
bs_create target.img size 4M
qemu-io -f raw -c 'write -P 0x6d 0 1M' "$(bs_uri target.img)" >/dev/null || fail "write the target"
LINK=$(bs_key link.img)
python3 - "$GLUSTER_VOL" "$GLUSTER_HOSTS" "/$TEST_ID/link.img" "target.img" <<'PY' ||
import ctypes, sys
vol, hosts, link, target = sys.argv[1:5]
host, _, port = hosts.split(",")[0].partition(":")
api = ctypes.CDLL("libgfapi.so.0")
api.glfs_new.restype = ctypes.c_void_p
fs = api.glfs_new(vol.encode())
api.glfs_set_volfile_server(ctypes.c_void_p(fs), b"tcp", host.encode(), int(port or 24007))
api.glfs_set_logging(ctypes.c_void_p(fs), b"/dev/null", 0)
if api.glfs_init(ctypes.c_void_p(fs)) != 0:
    sys.exit("glfs_init failed")
if api.glfs_symlink(ctypes.c_void_p(fs), target.encode(), link.encode()) != 0:
    sys.exit("glfs_symlink failed: errno %d" % ctypes.get_errno())
# No glfs_fini: it can take seconds, and the process ends here.
PY
  fail "making the symlink on the volume"
expect_fail 1 "is the same object as the registered gluster/$(bs_key target.img)" \
  cli gluster import "$LINK"
pass "a symlink key to a registered backstore's file is refused: two backstores on one file"

# A runner with only the link registered serves the target through it.
bs_start_second_runner
"$CLI" gluster import "$LINK" $H2 >/dev/null || fail "import of a symlink key"
qemu-io -f raw -c 'read -P 0x6d 0 1M' "nbd://127.0.0.1:$IO2/gluster/$LINK" >"$T/qio" 2>&1 &&
  ! grep -q failed "$T/qio" || { cat "$T/qio"; fail "the symlink key does not serve its target's data"; }
gfid() { "$CLI" --json gluster info "$@" | sed -n 's/.*"gfid": *"\([0-9a-f-]*\)".*/\1/p'; }
[ -n "$(gfid "$LINK" $H2)" ] && [ "$(gfid "$LINK" $H2)" = "$(gfid "$(bs_key target.img)" host "$RPC")" ] ||
  { "$CLI" --json gluster info "$LINK" $H2; fail "the symlink key's identity is not its target's"; }
pass "a symlink key is imported, serves its target's data, and carries the target's identity"

"$CLI" gluster delete "$LINK" $H2 >/dev/null || fail "delete of a symlink key"
expect_fail 1 "does not exist" "$CLI" gluster info "$LINK" $H2
kill -TERM $R2; wait $R2 || fail "the second runner did not stop cleanly"
qemu-io -f raw -c 'read -P 0x6d 0 1M' "$(bs_uri target.img)" >"$T/qio" 2>&1 && ! grep -q failed "$T/qio" ||
  { cat "$T/qio"; fail "deleting the link harmed its target"; }
pass "delete of a symlink key removes the link; the target and its data stay"
