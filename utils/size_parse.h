// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// Parsing and printing of sizes as operators type them: 1048576, 512B, 4K,
// 4KiB, 1M, 1MiB, 1.5G, 1T. Units are binary (K = 1024). Pure functions,
// thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "utils/status.h"

namespace nbdr {

// The largest size any backstore may have (2^63 - 1, what off_t can hold).
inline constexpr uint64_t kMaxBackstoreSize = INT64_MAX;

// Parses a non-negative whole number of bytes with an optional unit
// (B, K, KB, KiB, M, ..., E, case-insensitive) and an optional decimal
// fraction. Fails with EINVAL on junk, a sign, a fraction that is not a
// whole number of bytes, and values above kMaxBackstoreSize (EOVERFLOW).
Expected<uint64_t> ParseSize(std::string_view text);

// ParseSize, then refuses zero and sizes that are not a multiple of 512.
Expected<uint64_t> ParseBackstoreSize(std::string_view text);

// "1 GiB", "1.5 GiB", "512 B", "4097 B": exact when it fits, else 2 decimals.
std::string FormatSize(uint64_t bytes);

}  // namespace nbdr
