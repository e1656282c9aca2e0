// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// The runner's id; see runner_id.h.
#include "runner/runner_id.h"

#include <cctype>
#include <cerrno>
#include <fstream>
#include <sstream>

#include "utils/atomic_file.h"
#include "utils/hex.h"
#include "utils/random.h"

namespace nbdr {

namespace {

constexpr size_t kIdBytes = 16;

bool IsRunnerId(const std::string& text) {
  if (text.size() != 2 * kIdBytes) return false;
  for (unsigned char c : text)
    if (!isxdigit(c) || isupper(c)) return false;
  return true;
}

}  // namespace

Expected<std::string> LoadOrMakeRunnerId(const std::string& state_dir) {
  const std::string path = state_dir + "/runner-id";
  std::ifstream in(path);
  if (in) {
    std::stringstream text;
    text << in.rdbuf();
    std::string id = text.str();
    if (!id.empty() && id.back() == '\n') id.pop_back();
    if (!IsRunnerId(id))
      return Status::Error(EINVAL, path + " does not hold a runner id (32 lower-case hex "
                                          "digits); restore it, or remove it to make a new one "
                                          "(then re-register this runner's runner sets)");
    return id;
  }
  if (errno != ENOENT) return PosixError(path);
  auto bytes = RandomBytes(kIdBytes);
  if (!bytes) return bytes.status();
  std::string id = EncodeHex(*bytes);
  if (Status s = WriteFileAtomically(path, id + "\n", 0644); !s.ok()) return s;
  return id;
}

}  // namespace nbdr
