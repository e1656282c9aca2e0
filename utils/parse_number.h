// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// ParseLongInRange: a decimal number from text, within [min, max].
// Header-only, so that handlers (which link nothing of the runner's) parse
// their options as the runner parses its own. Thread-safe.
#pragma once

#include <cerrno>
#include <cstdlib>
#include <optional>
#include <string>

namespace nbdr {

// The number text holds, all of it decimal digits (an optional sign
// first), when it lies in [min, max]; nullopt otherwise (empty text too).
inline std::optional<long> ParseLongInRange(const std::string& text, long min, long max) {
  if (text.empty()) return std::nullopt;
  char* end = nullptr;
  errno = 0;
  long v = strtol(text.c_str(), &end, 10);
  if (errno || *end || v < min || v > max) return std::nullopt;
  return v;
}

}  // namespace nbdr
