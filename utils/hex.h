// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// Hexadecimal text of bytes (keys in psktool's format). Header-only, pure.
#pragma once

#include <string>
#include <string_view>

namespace nbdr {

inline std::string EncodeHex(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char b : bytes) {
    out += kDigits[b >> 4];
    out += kDigits[b & 15];
  }
  return out;
}

// False (and *out unspecified) unless hex is an even number of hex digits.
inline bool DecodeHex(std::string_view hex, std::string* out) {
  if (hex.empty() || hex.size() % 2) return false;
  auto digit = [](char c) {
    return c >= '0' && c <= '9' ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
  };
  out->clear();
  for (size_t i = 0; i < hex.size(); i += 2) {
    int hi = digit(hex[i]), lo = digit(hex[i + 1]);
    if (hi < 0 || lo < 0) return false;
    out->push_back(static_cast<char>(hi * 16 + lo));
  }
  return true;
}

}  // namespace nbdr
