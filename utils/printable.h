// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// Printable: text from a peer (keys, device names, host names, messages)
// made safe for a log line or a terminal. Control characters (including
// newline and ESC, and the C1 controls as UTF-8) become visible escapes,
// so nothing a peer sends can start a forged log line or move the cursor.
// Other UTF-8 passes through. Header-only, pure, thread-safe.
#pragma once

#include <cstdio>
#include <string>
#include <string_view>

namespace nbdr {

// Whether text[i] starts a C1 control (U+0080..U+009F) in UTF-8.
inline bool IsC1At(std::string_view text, size_t i) {
  return static_cast<unsigned char>(text[i]) == 0xc2 && i + 1 < text.size() &&
         (static_cast<unsigned char>(text[i + 1]) & 0xe0) == 0x80;
}

inline bool NeedsEscape(std::string_view text) {
  for (size_t i = 0; i < text.size(); i++) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x20 || c == 0x7f || IsC1At(text, i)) return true;
  }
  return false;
}

inline std::string Printable(std::string_view text) {
  if (!NeedsEscape(text)) return std::string(text);
  std::string out;
  out.reserve(text.size() + 16);
  char buf[8];
  for (size_t i = 0; i < text.size(); i++) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c < 0x20 || c == 0x7f) {
      snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else if (IsC1At(text, i)) {
      snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned char>(text[++i]));
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

// Printable(text) in double quotes, for a value inside a log line.
inline std::string Quoted(std::string_view text) {
  std::string out(1, '"');  // appended, not "\"" + ...: GCC 12 -O3 warns on that wrongly
  out += Printable(text);
  out += '"';
  return out;
}

}  // namespace nbdr
