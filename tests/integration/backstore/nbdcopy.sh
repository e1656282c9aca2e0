#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
# Backstore test (every backend): a full-size round trip with nbdcopy
# (multi-conn, sparse-aware): a local image copied in and out keeps its
# checksum, and the backend stores exactly those bytes.
source "$(dirname "$0")/../functions.sh"
source "$(dirname "$0")/../backstore.sh"
requires nbdcopy sha256sum

bs_start_runner
bs_create copy.img size 96M
URI=$(bs_uri copy.img)

# A source with data, zeroes and a hole.
truncate -s 96M "$T/src.img"
dd if=/dev/urandom of="$T/src.img" bs=1M count=20 conv=notrunc status=none
dd if=/dev/urandom of="$T/src.img" bs=1M count=8 seek=60 conv=notrunc status=none
nbdcopy --connections=4 "$T/src.img" "$URI"
nbdcopy --connections=4 "$URI" "$T/back.img"
a=$(sha256sum <"$T/src.img" | cut -d' ' -f1)
b=$(sha256sum <"$T/back.img" | cut -d' ' -f1)
[ "$a" = "$b" ] || fail "checksums differ: $a vs $b"
pass "nbdcopy in and out with 4 connections: sha256 $a"
bs_backing_copy copy.img "$T/backing.img"
cmp "$T/src.img" "$T/backing.img" || fail "the $BACKEND backend stores other bytes"
pass "the $BACKEND backend holds exactly the copied bytes"
