// The kernel side of mapping: the nbd module (loaded through libkmod when
// missing) and its generic netlink family "nbd" (libnl-genl-3):
// NBD_CMD_CONNECT hands connected sockets to /dev/nbdX, NBD_CMD_DISCONNECT
// takes them back, NBD_CMD_STATUS lists what is connected.
// Functions are thread-safe; each opens its own netlink socket.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "utils/status.h"

namespace nbdr {

// Loads nbd.ko unless /sys/module/nbd exists.
Status EnsureNbdModule();

struct KernelConnect {
  int index = -1;  // -1: the kernel picks a free device
  std::vector<int> sockets;
  uint64_t size = 0;
  uint64_t block_size = 512;
  uint64_t server_flags = 0;
  uint64_t timeout_s = 30;
  uint64_t dead_conn_timeout_s = 0;
  std::string backend_id;
};

// Connects; returns the device index.
Expected<int> NbdConnect(const KernelConnect& c);
Status NbdDisconnect(int index);

struct KernelDevice {
  int index;
  bool connected;
};
Expected<std::vector<KernelDevice>> NbdStatus();

// "/dev/nbd7" -> 7; -1 when not such a name.
int ParseNbdDevice(const std::string& dev);
// The backend identifier of /dev/nbdN, read from sysfs ("" if unset).
std::string NbdBackend(int index);

}  // namespace nbdr
