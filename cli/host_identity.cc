// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// This host's identity for mappings; see host_identity.h.
#include "cli/host_identity.h"

#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <fstream>

#include "utils/names.h"

namespace nbdr {

namespace {

constexpr size_t kMachineIdShown = 12;

}  // namespace

Expected<std::string> ThisHostId() {
  if (const char* env = getenv("NBD_CLI_HOST_ID")) {
    std::string id = env;
    if (!ValidateHostId(id).ok())
      return Status::Error(EINVAL, "NBD_CLI_HOST_ID must be one printable line of 1 to " +
                                       std::to_string(kMaxHostIdLength) + " bytes");
    return id;
  }
  char name[256] = {};
  if (gethostname(name, sizeof name - 1) != 0 || !name[0])
    return Status::Error(errno ? errno : EINVAL, "cannot tell this host's name");
  std::string id = name;
  std::string machine;
  std::ifstream in("/etc/machine-id");
  if (in >> machine) {
    std::erase_if(machine, [](unsigned char c) { return !isxdigit(c); });
    if (!machine.empty()) id += " (machine " + machine.substr(0, kMachineIdShown) + ")";
  }
  if (!ValidateHostId(id).ok())
    return Status::Error(EINVAL, "this host's name is not usable as its identity; set "
                                 "NBD_CLI_HOST_ID");
  return id;
}

}  // namespace nbdr
