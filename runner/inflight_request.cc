// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// Encoding a request's reply; see inflight_request.h.
#include "runner/inflight_request.h"

#include <algorithm>
#include <cstring>

namespace nbdr {

using namespace nbd;

namespace {

// Clips the handler's extents to the request and to the export and
// encodes them as descriptors; never a zero length.
void EncodeDescriptors(InflightRequest* ir, uint64_t export_size) {
  uint32_t nr = std::min(ir->nr_extents, ir->max_extents);
  uint64_t total = 0, remaining_export = export_size - std::min(export_size, ir->offset);
  uint64_t limit = std::min(ir->requested_length, remaining_export);
  ir->descriptors.reserve(kBlockDescriptorSize * static_cast<size_t>(nr));
  for (uint32_t i = 0; i < nr && total < limit; i++) {
    uint64_t l = std::min(ir->extents[i].length, limit - total);
    if (l == 0) continue;
    uint8_t d[kBlockDescriptorSize];
    EncodeBlockDescriptor(d, static_cast<uint32_t>(l), ir->extents[i].flags & (kStateHole | kStateZero));
    ir->descriptors.insert(ir->descriptors.end(), d, d + kBlockDescriptorSize);
    total += l;
  }
}

}  // namespace

void BuildReply(InflightRequest* ir, int error, const NegotiatedExport& e) {
  uint8_t* hdr = ir->reply_hdr;
  const uint16_t type = ir->command;
  if (type == kCmdBlockStatus && !error) {
    EncodeDescriptors(ir, e.LiveSize());
    if (ir->descriptors.empty()) error = EIO;
  }
  uint32_t nbd_error = ErrnoToNbd(error);
  if (error && nbd_error == 0) nbd_error = kEIO;

  if (e.structured && error) {
    // A static string (strerror's may live in a per-thread buffer that
    // another call on this thread frees before the reply is sent).
    const char* msg = strerrordesc_np(error);
    if (!msg) msg = "Unknown error";
    size_t mlen = strlen(msg);
    ir->reply_hdr_len =
        static_cast<uint32_t>(EncodeErrorChunk(hdr, ir->cookie, nbd_error, static_cast<uint16_t>(mlen)));
    ir->reply_data = msg;
    ir->reply_data_len = mlen;
  } else if (e.structured && type == kCmdRead) {
    ir->reply_hdr_len = static_cast<uint32_t>(
        EncodeOffsetDataChunk(hdr, ir->cookie, ir->offset, ir->requested_length));
    ir->reply_data = ir->buf;
    ir->reply_data_len = ir->requested_length;
  } else if (type == kCmdBlockStatus && !error) {
    ir->reply_hdr_len = static_cast<uint32_t>(
        EncodeBlockStatusChunk(hdr, ir->cookie, kBaseAllocationId, ir->descriptors.size()));
    ir->reply_data = ir->descriptors.data();
    ir->reply_data_len = ir->descriptors.size();
  } else {
    EncodeSimpleReply(hdr, nbd_error, ir->cookie);
    ir->reply_hdr_len = kSimpleReplySize;
    if (type == kCmdRead && !error) {
      ir->reply_data = ir->buf;
      ir->reply_data_len = ir->requested_length;
    }
  }
}

}  // namespace nbdr
