// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// NbdConnection: one client connection on the NBD data port. Owns its
// Transport, runs the handshake (NbdHandshake) and then, for the export
// the client chose, the transmission phase (TransmissionEngine). Either
// may park the connection while its client is silent: Serve returns, the
// server waits on its event loop for the client (or the park deadline)
// and calls Serve again on a new thread, which goes on where it stopped.
//
// Thread-safety: Serve() on one thread at a time; Shutdown() and the
// accessors from any thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "runner/nbd_server.h"
#include "runner/transport.h"

namespace nbdr {

class NbdHandshake;
class TransmissionEngine;

class NbdConnection {
 public:
  // peer_host: the client's address without its port (for per-peer
  // limits and the idle rule).
  NbdConnection(std::unique_ptr<Transport> transport, uint64_t id, NbdServer* server,
                std::string peer_host);
  ~NbdConnection();
  NbdConnection(const NbdConnection&) = delete;
  NbdConnection& operator=(const NbdConnection&) = delete;

  enum class Outcome { kParked, kEnded };
  // Runs the connection on the calling thread until the client left (or
  // was dropped) and every request has completed (kEnded), or until it
  // parks.
  Outcome Serve();
  // After kParked: the descriptor that becomes readable when the client
  // sends, and the time by which Serve must run anyway (to close the
  // connection if it is still silent); time_point::max() for none.
  int event_fd() const { return transport_->event_fd(); }
  std::chrono::steady_clock::time_point park_deadline() const;
  // Whether Serve ran before (a connection parked, not a new one).
  bool started() const { return started_; }
  // Stops reading new requests (any thread); Serve() then drains and ends.
  void Shutdown();

  // "conn#7 127.0.0.1:40312", with the export once the client named one.
  // Changes only during the handshake.
  const std::string& name() const { return name_; }
  const std::string& peer_host() const { return peer_host_; }

 private:
  // Transmission ended: the export closes, and a vanished client of a
  // kernel mapping is noted.
  void EndTransmission();

  const std::unique_ptr<Transport> transport_;
  NbdServer* const server_;
  const std::string peer_host_;
  std::string name_;
  bool started_ = false;
  std::unique_ptr<NbdHandshake> handshake_;  // until the client enters transmission
  std::unique_ptr<TransmissionEngine> engine_;
};

}  // namespace nbdr
