// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// The runner's id: 32 hex digits made at its first start and kept in its
// state directory (file "runner-id"). NBDR_VERSION answers it, so nbd-cli
// can tell the runners of a runner set apart whatever addresses name
// them (two names of one runner are one runner).
#pragma once

#include <string>

#include "utils/status.h"

namespace nbdr {

// Reads state_dir/runner-id, or makes it when there is none. A file that
// holds anything but 32 hex digits (and a newline) is an error naming it:
// the id is never silently changed.
Expected<std::string> LoadOrMakeRunnerId(const std::string& state_dir);

}  // namespace nbdr
