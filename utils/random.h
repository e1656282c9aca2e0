// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// Random bytes from the kernel (getrandom), for keys and identifiers.
#pragma once

#include <cstddef>
#include <string>

#include "utils/status.h"

namespace nbdr {

// n bytes from getrandom(2), waiting for the pool at boot if it must.
Expected<std::string> RandomBytes(size_t n);

}  // namespace nbdr
