// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// The identity nbd-cli and nbd-clid give the runner for this host when they
// map: the runner records it with the mapping, and only this host may then
// confirm or revive it, or (nbd-cli unmap) clear a stale record of its own
// without 'force'.
#pragma once

#include <string>

#include "utils/status.h"

namespace nbdr {

// $NBD_CLI_HOST_ID when set (one printable line of at most 255 bytes);
// otherwise the host name and, where /etc/machine-id exists, the start of
// the machine id: "node3 (machine 4f0b1c2d3e4f)". Host names alone can
// repeat (cloned guests); the machine id tells them apart.
Expected<std::string> ThisHostId();

}  // namespace nbdr
