// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// NegotiatedExport: what a handshake agreed with a client — the export it
// opened, its size, block sizes and capabilities, the reply style and
// meta context — and what that allows in transmission (ValidateRequest).
// A plain value, constant once the handshake returned it.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "runner/backstore_registry.h"
#include "utils/nbd_protocol.h"

namespace nbdr {

struct NegotiatedExport {
  std::shared_ptr<OpenExport> open;  // null until INFO/GO/EXPORT_NAME opened it
  std::string name;                  // "<type>/<key>"
  uint64_t size = 0;
  uint32_t caps = 0;  // NBDR_CAP_* of the handler's export
  bool readonly = false;
  uint32_t min_block = 1;         // advertised to a client that asks for block sizes
  uint32_t handler_min_block = 1; // the alignment the handler needs (1: any byte)
  uint32_t preferred_block = 4096;
  uint32_t max_payload = 32u << 20;
  bool structured = false;                // NBD_OPT_STRUCTURED_REPLY
  bool base_allocation = false;           // base:allocation selected for this export
  bool client_knows_block_size = false;   // the client asked for NBD_INFO_BLOCK_SIZE

  // The size requests are checked against: the open export's, which a
  // resize changes, or size until it is open.
  uint64_t LiveSize() const { return open ? open->size() : size; }
  // The NBD_FLAG_* sent to the client.
  uint16_t TransmissionFlags() const;
};

// The alignment requests must keep: the advertised minimum for a client
// that asked for block sizes (it promised to honour it), else 1, as the
// NBD spec asks of a server whose client negotiated nothing (a handler
// that needs alignment gets it from realigned_io.h).
uint32_t RequiredAlignment(const NegotiatedExport& e);

// Checks request h against what was negotiated: 0 when it may run, else
// the errno for its reply and *why says what was wrong. Does not look at
// the magic or NBD_CMD_DISC (the reader handles those).
int ValidateRequest(const nbd::RequestHeader& h, const NegotiatedExport& e, const char** why);

}  // namespace nbdr
