#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
# Secure defaults on GlusterFS (issue 26): the gluster handler created
# disk images 0644 in 0755 directories, readable by every user of every
# host that mounts the volume. Now files are 0600 in 0700 directories,
# and gluster-file-mode changes both; seen on the brick itself.
source "$(dirname "$0")/functions.sh"
NBDR_BACKEND=gluster
source "$(dirname "$0")/backstore.sh"

# brick_mode KEY: the mode of KEY's file (or directory) on the brick.
brick_mode() { stat -c %a "$GLUSTER_BRICKS/${1%%/*}/${1#*/}"; }

bs_start_runner
bs_create modes/a.img size 1M
KEY=$(bs_key modes/a.img)
[ "$(brick_mode "$KEY")" = 600 ] || fail "gluster file mode $(brick_mode "$KEY")"
[ "$(brick_mode "${KEY%/a.img}")" = 700 ] || fail "gluster directory mode $(brick_mode "${KEY%/a.img}")"
stop_runner
bs_start_runner --gluster-file-mode 0660
bs_create shared/b.img size 1M
KEY=$(bs_key shared/b.img)
[ "$(brick_mode "$KEY")" = 660 ] && [ "$(brick_mode "${KEY%/b.img}")" = 770 ] ||
  fail "gluster-file-mode 0660: $(brick_mode "$KEY") in $(brick_mode "${KEY%/b.img}")"
pass "gluster: files 0600 in 0700 directories by default; gluster-file-mode 0660 gives 0660 in 0770"
