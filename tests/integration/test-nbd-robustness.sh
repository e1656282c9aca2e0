#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
# Test every point of the NBD robustness checklist with malformed traffic
# from a raw-socket client (nbd_wire.py): option and name limits, range and
# alignment checks, unknown commands, bad magic, timeouts, bounded memory.
source "$(dirname "$0")/functions.sh"
requires python3

start_runner --handshake-timeout 2 --idle-timeout 3
cli file create rw.img size 16M >/dev/null
cli file create ro.img size 1M readonly >/dev/null
python3 "$(dirname "$0")/nbd_robustness.py" "$IO_PORT" "$RUNNER_PID"
