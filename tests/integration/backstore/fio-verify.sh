#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
# Backstore test (every backend): concurrent verified I/O with fio's nbd
# engine: 4 jobs, each on its own connection to the same export
# (multi-conn), queue depth 16.
source "$(dirname "$0")/../functions.sh"
source "$(dirname "$0")/../backstore.sh"
requires fio
fio --enghelp=nbd >/dev/null 2>&1 || skip "fio lacks the nbd engine"

bs_start_runner
bs_create fio.img size 128M
cat >"$T/verify.fio" <<FIO
[global]
ioengine=nbd
uri=$(bs_uri fio.img)
rw=randwrite
bs=4k
iodepth=16
size=32M
verify=crc32c
verify_fatal=1
verify_state_save=0
do_verify=1
[job0]
offset=0
[job1]
offset=32M
[job2]
offset=64M
bs=64k
[job3]
offset=96M
rw=write
bs=1M
FIO
fio --output="$T/fio.out" "$T/verify.fio" || { cat "$T/fio.out"; fail "fio verify"; }
grep -q 'err= 0' "$T/fio.out" || { cat "$T/fio.out"; fail "fio reported errors"; }
grep -c 'err= 0' "$T/fio.out" | grep -q 4 || { cat "$T/fio.out"; fail "not every job ran clean"; }
pass "fio nbd engine: 4 connections write and verify 128 MiB with crc32c"
