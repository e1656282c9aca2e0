#!/usr/bin/env bash
# Test a full-size round trip with nbdcopy (multi-conn, sparse-aware):
# a local image copied in and out keeps its checksum.
source "$(dirname "$0")/functions.sh"
requires nbdcopy sha256sum

start_runner
cli file create copy.img size 96M >/dev/null
URI="$NBD/file/copy.img"

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
cmp "$T/src.img" "$T/files/copy.img" || fail "backing file differs from source"
pass "backing file holds exactly the copied bytes"
