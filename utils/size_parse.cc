// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// Size parsing; see size_parse.h.
#include "utils/size_parse.h"

#include <cctype>
#include <cerrno>
#include <cstdio>

namespace nbdr {

namespace {

Status SizeError(int code, std::string_view text, const char* why) {
  return Status::Error(code, "size '" + std::string(text) + "': " + why);
}

// Returns the multiplier for a unit suffix, or 0 when unknown.
uint64_t UnitMultiplier(std::string_view unit) {
  std::string u;
  for (char c : unit) u += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (u.empty() || u == "b") return 1;
  static const char kPrefixes[] = "kmgtpe";
  for (int i = 0; kPrefixes[i]; i++) {
    std::string p(1, kPrefixes[i]);
    if (u == p || u == p + "b" || u == p + "ib") return uint64_t{1} << (10 * (i + 1));
  }
  return 0;
}

}  // namespace

Expected<uint64_t> ParseSize(std::string_view text) {
  std::string_view s = text;
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  if (s.empty()) return SizeError(EINVAL, text, "empty");
  if (s.front() == '-') return SizeError(EINVAL, text, "negative sizes are not allowed");
  if (s.front() == '+') return SizeError(EINVAL, text, "expected a number");
  size_t i = 0;
  unsigned __int128 whole = 0;
  while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) {
    whole = whole * 10 + static_cast<unsigned>(s[i] - '0');
    if (whole > kMaxBackstoreSize) return SizeError(EOVERFLOW, text, "too large");
    i++;
  }
  size_t int_digits = i;
  unsigned __int128 frac = 0, frac_den = 1;
  if (i < s.size() && s[i] == '.') {
    i++;
    size_t start = i;
    while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) {
      if (i - start >= 18) return SizeError(EINVAL, text, "too many decimal places");
      frac = frac * 10 + static_cast<unsigned>(s[i] - '0');
      frac_den *= 10;
      i++;
    }
    if (i == start) return SizeError(EINVAL, text, "expected digits after '.'");
  }
  if (int_digits == 0 && frac_den == 1) return SizeError(EINVAL, text, "expected a number");
  std::string_view unit = s.substr(i);
  while (!unit.empty() && std::isspace(static_cast<unsigned char>(unit.front())))
    unit.remove_prefix(1);
  uint64_t mult = UnitMultiplier(unit);
  if (mult == 0)
    return SizeError(EINVAL, text,
                     "unknown unit (use B, K, M, G, T, P, E, optionally KiB, MB ...)");
  unsigned __int128 bytes = whole * mult;
  if (bytes > kMaxBackstoreSize) return SizeError(EOVERFLOW, text, "too large");
  unsigned __int128 frac_bytes = frac * mult;
  if (frac_bytes % frac_den != 0)
    return SizeError(EINVAL, text, "not a whole number of bytes");
  bytes += frac_bytes / frac_den;
  if (bytes > kMaxBackstoreSize) return SizeError(EOVERFLOW, text, "too large");
  return static_cast<uint64_t>(bytes);
}

Expected<uint64_t> ParseBackstoreSize(std::string_view text) {
  auto size = ParseSize(text);
  if (!size) return size;
  if (*size == 0) return SizeError(EINVAL, text, "a backstore cannot be empty");
  if (*size % 512 != 0)
    return SizeError(EINVAL, text, "must be a multiple of 512 bytes");
  return size;
}

std::string FormatSize(uint64_t bytes) {
  static const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  int u = 0;
  uint64_t div = 1;
  while (u < 6 && bytes >= div * 1024) {
    div *= 1024;
    u++;
  }
  char buf[64];
  if (bytes % div == 0) {
    snprintf(buf, sizeof buf, "%llu %s", static_cast<unsigned long long>(bytes / div), kUnits[u]);
  } else {
    snprintf(buf, sizeof buf, "%.2f %s", static_cast<double>(bytes) / static_cast<double>(div),
             kUnits[u]);
  }
  return buf;
}

}  // namespace nbdr
