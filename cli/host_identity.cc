// This host's identity for mappings; see host_identity.h.
#include "cli/host_identity.h"

#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <fstream>

namespace nbdr {

namespace {

constexpr size_t kMaxHostId = 255;  // NBDR_MAX_CLIENT less the terminator
constexpr size_t kMachineIdShown = 12;

bool Printable(const std::string& s) {
  for (unsigned char c : s)
    if (c < 0x20 || c == 0x7f) return false;
  return true;
}

}  // namespace

Expected<std::string> ThisHostId() {
  if (const char* env = getenv("NBD_CLI_HOST_ID")) {
    std::string id = env;
    if (id.empty() || id.size() > kMaxHostId || !Printable(id))
      return Status::Error(EINVAL, "NBD_CLI_HOST_ID must be one printable line of 1 to " +
                                       std::to_string(kMaxHostId) + " bytes");
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
  if (id.size() > kMaxHostId || !Printable(id))
    return Status::Error(EINVAL, "this host's name is not usable as its identity; set "
                                 "NBD_CLI_HOST_ID");
  return id;
}

}  // namespace nbdr
