// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// Reading "key = value" configuration files (the runner's --config).
// Blank lines and lines starting with '#' are ignored; values may be
// quoted with double quotes; a key may be set once per file. Pure
// functions, thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "utils/status.h"

namespace nbdr {

struct ConfigEntry {
  std::string key;
  std::string value;
  std::string origin;  // "path:line" or "command line", for error messages
};

Expected<std::vector<ConfigEntry>> ParseConfigText(std::string_view text,
                                                   std::string_view origin);
Expected<std::vector<ConfigEntry>> ReadConfigFile(const std::string& path);

}  // namespace nbdr
