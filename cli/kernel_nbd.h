// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
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

struct nl_sock;

namespace nbdr {

// Loads NAME.ko (with what it depends on) unless /sys/module/NAME exists.
Status EnsureKernelModule(const std::string& name);
// EnsureKernelModule("nbd").
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
// Replaces the dead sockets of a connected device (the device keeps its
// queue while dead-conn-timeout runs); backend_id must match CONNECT's.
Status NbdReconfigure(int index, const std::vector<int>& sockets, const std::string& backend_id);
// Gives a connected device a new size online (NBD_CMD_RECONFIGURE with
// NBD_ATTR_SIZE_BYTES, kernel 5.3 and later): the kernel announces the
// change (a uevent with RESIZE=1), and a file system on it can grow.
Status NbdResize(int index, uint64_t bytes);
// Grows /dev/nbd<index> to size when the kernel has it smaller (its
// backstore was resized): whether it grew it. Never shrinks a device: a
// backstore is shrunk only while unmapped.
Expected<bool> GrowDevice(int index, uint64_t size);
// The size the kernel gives /dev/nbd<index>, in bytes (0 when unknown).
uint64_t NbdDeviceBytes(int index);

// Listens for NBD_CMD_LINK_DEAD on the nbd multicast group.
class LinkDeadListener {
 public:
  static Expected<LinkDeadListener> Open();
  LinkDeadListener(LinkDeadListener&&) noexcept;
  LinkDeadListener& operator=(LinkDeadListener&&) noexcept;
  ~LinkDeadListener();
  int fd() const;
  // Reads what is pending; returns the indexes whose link died.
  std::vector<int> Drain();

 private:
  LinkDeadListener() = default;
  ::nl_sock* sk_ = nullptr;
  std::vector<int> dead_;
};

struct KernelDevice {
  int index;
  bool connected;
};
Expected<std::vector<KernelDevice>> NbdStatus();

// The backend identifier of /dev/nbdN, read from sysfs ("" if unset).
std::string NbdBackend(int index);
// Whether /dev/nbdN has a live connection on this host (its sysfs pid).
bool NbdConnected(int index);
// What uses /dev/nbdN or one of its partitions, as a phrase ("mounted on
// /mnt", "held by dm-0", "used as swap"); "" when nothing does. Read from
// sysfs, /proc/self/mountinfo and /proc/swaps without opening the device
// (an open can start a partition scan that waits on a dead link).
std::string NbdDeviceUse(int index);

}  // namespace nbdr
