// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// Reading TLS credential files the same careful way in the runner and the
// CLI: a key or certificate is read through one descriptor, and refused
// (with a message naming the file and the fix) unless the file opened
// (after symlinks: certbot's layout is links) is a regular file owned by
// this user or root that nobody else may write, and, when it holds a
// secret, nobody else may read. What was checked is what is read: the
// checks are made on the open descriptor. psktool's format ("identity:hexkey" per line) is parsed here too.
// Functions are thread-safe.
#pragma once

#include <map>
#include <string>

#include "utils/status.h"

namespace nbdr {

enum class FileSecrecy { kPublic, kSecret };

// The contents of path after the checks above; ENOENT when it is missing.
Expected<std::string> ReadCredentialFile(const std::string& path, FileSecrecy secrecy);

// Shorter PSKs are open to an offline guess from one recorded handshake.
constexpr size_t kMinPskBytes = 16;

// identity -> raw key. Refuses a malformed
// line (naming path:line), a short key, an identity given twice, and a
// file without any key.
using PskTable = std::map<std::string, std::string>;
Expected<PskTable> ParsePskText(const std::string& path, const std::string& text);
// ReadCredentialFile(path, kSecret), then ParsePskText.
Expected<PskTable> ReadPskFile(const std::string& path);

}  // namespace nbdr
