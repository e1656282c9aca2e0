// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// Configuration file parsing; see config_file.h.
#include "utils/config_file.h"

#include <cerrno>
#include <fstream>
#include <sstream>

namespace nbdr {

namespace {
std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}
}  // namespace

Expected<std::vector<ConfigEntry>> ParseConfigText(std::string_view text,
                                                   std::string_view origin) {
  std::vector<ConfigEntry> out;
  size_t lineno = 0;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    lineno++;
    line = Trim(line);
    if (line.empty() || line.front() == '#') continue;
    std::string where = std::string(origin) + ":" + std::to_string(lineno);
    size_t eq = line.find('=');
    if (eq == std::string_view::npos)
      return Status::Error(EINVAL, where + ": expected 'key = value'");
    std::string_view key = Trim(line.substr(0, eq));
    std::string_view value = Trim(line.substr(eq + 1));
    if (key.empty()) return Status::Error(EINVAL, where + ": missing key before '='");
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"')
      value = value.substr(1, value.size() - 2);
    for (const auto& earlier : out)
      if (earlier.key == key)
        return Status::Error(EINVAL, where + ": '" + std::string(key) + "' is already set at " +
                                         earlier.origin);
    out.push_back({std::string(key), std::string(value), where});
  }
  return out;
}

Expected<std::vector<ConfigEntry>> ReadConfigFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return PosixError("read config " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ParseConfigText(ss.str(), path);
}

}  // namespace nbdr
