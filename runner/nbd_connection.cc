// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// One NBD client connection: handshake, then transmission; see
// nbd_connection.h.
#include "runner/nbd_connection.h"

#include "runner/nbd_handshake.h"
#include "runner/transmission_engine.h"
#include "utils/log.h"

namespace nbdr {

NbdConnection::NbdConnection(std::unique_ptr<Transport> transport, uint64_t id,
                             NbdServer* server)
    : transport_(std::move(transport)),
      server_(server),
      name_("conn#" + std::to_string(id) + " " + transport_->peer()) {}

NbdConnection::~NbdConnection() = default;

void NbdConnection::Shutdown() { transport_->ShutdownRead(); }

void NbdConnection::Run() {
  LOG_DEBUG(name_, "connected");
  std::optional<NegotiatedExport> negotiated = NbdHandshake(transport_.get(), server_, &name_).Run();
  if (!negotiated) {
    LOG_DEBUG(name_, "closed");
    return;
  }
  const std::string export_name = negotiated->open->record().ExportName();
  bool client_disconnected;
  {
    TransmissionEngine engine(transport_.get(), std::move(*negotiated), server_, &name_);
    engine.Run();
    client_disconnected = engine.client_disconnected();
  }  // the export closes here, before NoteConnectionLost looks for other users
  if (!client_disconnected && !server_->stopping()) {
    // The client vanished without NBD_CMD_DISC: if that was the export's
    // last connection, a kernel mapping on it is dead until its client
    // reconnects.
    server_->registry()->NoteConnectionLost(export_name);
  }
  LOG_DEBUG(name_, "closed");
}

}  // namespace nbdr
