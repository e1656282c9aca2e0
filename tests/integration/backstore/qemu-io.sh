#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
# Backstore test (every backend): qemu-io and qemu-img against one export:
# patterns written and read back asynchronously, write zeroes, discard,
# flush, FUA, and the backend's stored bytes equal a reference image.
source "$(dirname "$0")/../functions.sh"
source "$(dirname "$0")/../backstore.sh"
requires qemu-io qemu-img

bs_start_runner
bs_create vm/disk.img size 64M
URI=$(bs_uri vm/disk.img)

qemu-img info "$URI" | grep -q 'virtual size: 64 MiB' || fail "qemu-img info size"
pass "qemu-img info sees 64 MiB"

qemu-io -f raw \
  -c 'aio_write -P 0x11 0 1M' -c 'aio_write -P 0x22 1M 1M' -c 'aio_write -P 0x33 4M 64k' \
  -c 'aio_flush' \
  -c 'aio_read -P 0x11 0 1M' -c 'aio_read -P 0x22 1M 1M' -c 'aio_read -P 0x33 4M 64k' \
  -c 'aio_flush' "$URI" >"$T/qio" 2>&1 || { cat "$T/qio"; fail "qemu-io aio"; }
grep -qi 'pattern verification failed\|error' "$T/qio" && { cat "$T/qio"; fail "aio patterns"; }
pass "aio_write/aio_read patterns verify"

qemu-io -f raw -c 'write -P 0x44 8M 512k' -c 'write -z 8M 256k' -c 'read -P 0 8M 256k' \
  -c 'read -P 0x44 8448k 256k' "$URI" >"$T/qio" 2>&1 || { cat "$T/qio"; fail "write -z"; }
grep -qi 'verification failed' "$T/qio" && { cat "$T/qio"; fail "write -z pattern"; }
pass "write -z zeroes exactly its range"

qemu-io -f raw -c 'write -P 0x55 12M 4M' -c 'discard 12M 4M' -c 'read -P 0 12M 4M' "$URI" \
  >"$T/qio" 2>&1 || { cat "$T/qio"; fail "discard"; }
grep -qi 'verification failed' "$T/qio" && { cat "$T/qio"; fail "discard reads back zero"; }
pass "discard leaves a range that reads back as zeroes"

qemu-io -f raw -c 'write -f -P 0x66 16M 4k' -c 'flush' -c 'read -P 0x66 16M 4k' "$URI" \
  >"$T/qio" 2>&1 || { cat "$T/qio"; fail "fua write"; }
pass "FUA write and flush"

# The bytes the backend stores are the bytes the client wrote.
truncate -s 64M "$T/ref.img"
qemu-io -f raw -c 'write -P 0x11 0 1M' -c 'write -P 0x22 1M 1M' -c 'write -P 0x33 4M 64k' \
  -c 'write -P 0x44 8448k 256k' -c 'write -P 0x66 16M 4k' "$T/ref.img" >/dev/null
qemu-img compare -f raw -F raw "$T/ref.img" "$URI" || fail "qemu-img compare against reference"
bs_backing_copy vm/disk.img "$T/backing.img"
cmp "$T/ref.img" "$T/backing.img" || fail "the $BACKEND backend stores other bytes"
pass "qemu-img compare: export and $BACKEND backing store match a reference image"
