// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// InflightRequest: one NBD request between its submission to the handler
// and the end of its reply's send, and BuildReply, which encodes that
// reply (simple or structured; data, error or block status).
//
// Inherits the C request so the handler's completion callback gets back to
// it with a static_cast. Replies the core makes without a handler
// (refusals) use one too, and hold an in-flight slot like any request.
// Owned by whichever thread holds it: the reader that fills it, the handler
// until completion, then the connection's sender until it is written.
#pragma once

#include <sys/uio.h>

#include <cstdint>
#include <vector>

#include "nbd-runner/handler.h"
#include "runner/negotiated_export.h"
#include "utils/nbd_protocol.h"

namespace nbdr {

class TransmissionEngine;
class WriteGate;

struct InflightRequest : nbdr_request {
  TransmissionEngine* engine = nullptr;
  uint64_t cookie = 0;
  uint16_t command = 0;
  uint64_t accounted_bytes = 0;  // counted against the in-flight byte limit
  uint8_t* data = nullptr;       // from the connection's BufferPool
  size_t data_capacity = 0;
  std::vector<nbdr_extent> extent_buf;
  uint64_t requested_length = 0;
  int64_t started_ns = -1;          // when it was submitted (steady clock), for ExportStats
  WriteGate* write_gate = nullptr;  // held shared until completion (realigned_io.h)
  // The reply: header, then reply_data (read payload, error message or
  // block status descriptors), written as one iovec pair.
  uint8_t reply_hdr[nbd::kMaxReplyHeaderSize];
  uint32_t reply_hdr_len = 0;
  const void* reply_data = nullptr;
  size_t reply_data_len = 0;
  std::vector<uint8_t> descriptors;

  size_t reply_length() const { return reply_hdr_len + reply_data_len; }
};

// Encodes ir's reply for a request that ended with error (an errno, 0 for
// success), in the reply style e negotiated. Block status descriptors are
// clipped to the request and to the export; none left is EIO.
void BuildReply(InflightRequest* ir, int error, const NegotiatedExport& e);

}  // namespace nbdr
