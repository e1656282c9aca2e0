// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// For the fuzz targets that drive the NBD server: one process-wide real
// registry serving file/a.img (1 MiB) and file/ro.img (read-only) through
// the file handler built in this tree, an NbdServer that is not listening,
// and a socketpair per input whose client end the target writes the
// input into. Logging is on at debug level (its formatting of what the
// peer sent is fuzzed too) but goes nowhere.
#pragma once

#include <sys/socket.h>

#include <memory>
#include <thread>
#include <utility>

#include "runner/backstore_registry.h"
#include "runner/handler_set.h"
#include "runner/nbd_server.h"
#include "runner/transport.h"
#include "utils/unique_fd.h"

namespace nbdr::fuzz {

struct FuzzExport {
  std::unique_ptr<HandlerSet> handlers;
  std::unique_ptr<BackstoreRegistry> registry;
  std::unique_ptr<NbdServer> server;
};

// Set up on the first call (aborts if that fails: the fuzzer cannot run).
FuzzExport& SharedExport();

// A connected socketpair: the runner's end as a Transport, the client's.
struct Pair {
  std::unique_ptr<Transport> runner;
  UniqueFd client;
};
Pair MakePair();
// A connected socketpair of plain fds.
std::pair<UniqueFd, UniqueFd> RawPair();

// Writes data to fd in a thread of its own, then shuts the write side,
// and reads (and drops) whatever comes back until the other end closes;
// the destructor joins it.
class ClientFeeder {
 public:
  ClientFeeder(UniqueFd fd, const uint8_t* data, size_t size);
  ~ClientFeeder();
  ClientFeeder(const ClientFeeder&) = delete;
  ClientFeeder& operator=(const ClientFeeder&) = delete;

 private:
  UniqueFd fd_;
  std::thread thread_;
};

}  // namespace nbdr::fuzz
