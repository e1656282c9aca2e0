// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// Credential files; see tls_files.h.
#include "utils/tls_files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <sstream>

#include "utils/hex.h"
#include "utils/unique_fd.h"

namespace nbdr {

namespace {

// Credential files are small; a larger one is not what was meant.
constexpr off_t kMaxCredentialFileBytes = 1 << 20;

std::string FormatMode(mode_t mode) {
  char buf[8];
  snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(mode));
  return buf;
}

Status CheckOpenedFile(const std::string& path, const struct stat& st, FileSecrecy secrecy) {
  if (!S_ISREG(st.st_mode)) return Status::Error(EINVAL, path + ": not a regular file");
  if (st.st_uid != 0 && st.st_uid != geteuid())
    return Status::Error(EPERM, path + " belongs to uid " + std::to_string(st.st_uid) +
                                    ", neither root nor this user (uid " +
                                    std::to_string(geteuid()) + "), who could change it");
  const mode_t mode = st.st_mode & 07777;
  if ((mode & 022) != 0)
    return Status::Error(EPERM, path + " is writable by group or others (mode " +
                                    FormatMode(mode) + "); run chmod go-w " + path);
  if (secrecy == FileSecrecy::kSecret && (mode & 044) != 0)
    return Status::Error(EPERM, path + " holds a secret key but is readable by group or others "
                                       "(mode " + FormatMode(mode) + "); run chmod 600 " + path);
  if (st.st_size > kMaxCredentialFileBytes)
    return Status::Error(EFBIG, path + ": " + std::to_string(st.st_size) +
                                    " bytes is too large for a key or certificate file");
  return Status();
}

}  // namespace

Expected<std::string> ReadCredentialFile(const std::string& path, FileSecrecy secrecy) {
  // O_NONBLOCK: a FIFO put in a key's place must not hang the open.
  UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
  if (!fd.valid()) return PosixError(path);
  struct stat st;
  if (fstat(fd.get(), &st) != 0) return PosixError(path);
  if (Status s = CheckOpenedFile(path, st, secrecy); !s.ok()) return s;
  std::string text(static_cast<size_t>(st.st_size), '\0');
  size_t got = 0;
  while (got < text.size()) {
    ssize_t n = read(fd.get(), text.data() + got, text.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return PosixError(path);
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  text.resize(got);
  return text;
}

Expected<PskTable> ParsePskText(const std::string& path, const std::string& text) {
  PskTable table;
  std::istringstream in(text);
  std::string line;
  for (int number = 1; std::getline(in, line); number++) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || line[0] == '#') continue;
    const std::string where = path + ":" + std::to_string(number);
    size_t colon = line.find(':');
    if (colon == std::string::npos || colon == 0)
      return Status::Error(EINVAL, where + ": not IDENTITY:HEXKEY (psktool's format)");
    std::string identity = line.substr(0, colon), key;
    if (!DecodeHex(line.substr(colon + 1), &key))
      return Status::Error(EINVAL, where + ": the key of '" + identity + "' is not hexadecimal");
    if (key.size() < kMinPskBytes)
      return Status::Error(EINVAL, where + ": the key of '" + identity + "' has " +
                                       std::to_string(key.size()) + " bytes; at least " +
                                       std::to_string(kMinPskBytes) + " are needed");
    if (!table.emplace(identity, key).second)
      return Status::Error(EINVAL, where + ": identity '" + identity + "' given twice");
  }
  if (table.empty()) return Status::Error(EINVAL, path + ": no IDENTITY:HEXKEY line");
  return table;
}

Expected<PskTable> ReadPskFile(const std::string& path) {
  auto text = ReadCredentialFile(path, FileSecrecy::kSecret);
  if (!text) return text.status();
  return ParsePskText(path, *text);
}

}  // namespace nbdr
