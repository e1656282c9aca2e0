// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// One NBD client connection: handshake, then transmission; see
// nbd_connection.h.
#include "runner/nbd_connection.h"

#include "runner/nbd_handshake.h"
#include "runner/transmission_engine.h"
#include "utils/log.h"

namespace nbdr {

NbdConnection::NbdConnection(std::unique_ptr<Transport> transport, uint64_t id,
                             NbdServer* server, std::string peer_host)
    : transport_(std::move(transport)),
      server_(server),
      peer_host_(std::move(peer_host)),
      name_("conn#" + std::to_string(id) + " " + transport_->peer()) {}

NbdConnection::~NbdConnection() = default;

void NbdConnection::Shutdown() { transport_->ShutdownRead(); }

std::chrono::steady_clock::time_point NbdConnection::park_deadline() const {
  if (handshake_) return handshake_->deadline();
  if (engine_) return engine_->idle_deadline();
  return std::chrono::steady_clock::time_point::max();
}

NbdConnection::Outcome NbdConnection::Serve() {
  if (!started_) {
    started_ = true;
    LOG_DEBUG(name_, "connected");
    handshake_ = std::make_unique<NbdHandshake>(transport_.get(), server_, &name_);
  }
  if (handshake_) {
    switch (handshake_->Continue()) {
      case NbdHandshake::Progress::kParked: return Outcome::kParked;
      case NbdHandshake::Progress::kEnded:
        handshake_.reset();
        LOG_DEBUG(name_, "closed");
        return Outcome::kEnded;
      case NbdHandshake::Progress::kTransmission: break;
    }
    NegotiatedExport negotiated = handshake_->TakeResult();
    handshake_.reset();
    engine_ = std::make_unique<TransmissionEngine>(transport_.get(), std::move(negotiated),
                                                   server_, &name_, peer_host_);
  }
  if (engine_->Serve() == TransmissionEngine::Outcome::kParked) return Outcome::kParked;
  EndTransmission();
  LOG_DEBUG(name_, "closed");
  return Outcome::kEnded;
}

void NbdConnection::EndTransmission() {
  const std::string export_name = engine_->export_name();
  const bool client_disconnected = engine_->client_disconnected();
  engine_.reset();  // the export closes here, before NoteConnectionLost looks for other users
  if (!client_disconnected && !server_->stopping()) {
    // The client vanished without NBD_CMD_DISC: if that was the export's
    // last connection, a kernel mapping on it is dead until its client
    // reconnects.
    server_->registry()->NoteConnectionLost(export_name);
  }
}

}  // namespace nbdr
