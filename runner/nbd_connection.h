// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// NbdConnection: one client connection on the NBD data port. Owns its
// Transport, runs the handshake (NbdHandshake) and then, for the export
// the client chose, the transmission phase (TransmissionEngine).
//
// Thread-safety: Run() on the connection's own thread; Shutdown() and
// name() from any thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "runner/nbd_server.h"
#include "runner/transport.h"

namespace nbdr {

class NbdConnection {
 public:
  NbdConnection(std::unique_ptr<Transport> transport, uint64_t id, NbdServer* server);
  ~NbdConnection();
  NbdConnection(const NbdConnection&) = delete;
  NbdConnection& operator=(const NbdConnection&) = delete;

  // Runs the whole connection on the calling thread; returns when the
  // client left (or was dropped) and every request has completed.
  void Run();
  // Stops reading new requests (any thread); Run() then drains and ends.
  void Shutdown();

  // "conn#7 127.0.0.1:40312", with the export once the client named one.
  // Changes only during the handshake.
  const std::string& name() const { return name_; }

 private:
  const std::unique_ptr<Transport> transport_;
  NbdServer* const server_;
  std::string name_;
};

}  // namespace nbdr
