// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// A backstore's lifecycle state (enum nbdr_backstore_status of the control
// interface, rpc/nbd_rpc.x) and its text, the one form it takes on the
// wire, in saveconfig.json and in nbd-cli's output. The runner and the CLI
// compare the enum; only these functions know the words. Thread-safe.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "nbd_rpc.h"

namespace nbdr {

using BackstoreStatus = nbdr_backstore_status;

// "created", "mapping", "mapped", "dead".
const char* StatusName(BackstoreStatus status);
// The state a word names; nullopt for any other text.
std::optional<BackstoreStatus> ParseStatus(std::string_view text);
// "created, mapping, mapped, dead", for messages.
std::string StatusNames();

}  // namespace nbdr
