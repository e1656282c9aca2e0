// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// What a handshake agreed and what it allows; see negotiated_export.h.
#include "runner/negotiated_export.h"

#include <algorithm>
#include <cerrno>

namespace nbdr {

using namespace nbd;

uint16_t NegotiatedExport::TransmissionFlags() const {
  uint16_t f = kFlagHasFlags;
  if (readonly) f |= kFlagReadOnly;
  if (caps & NBDR_CAP_FLUSH) f |= kFlagSendFlush;
  if (caps & NBDR_CAP_FUA) f |= kFlagSendFua;
  if (!readonly && (caps & NBDR_CAP_TRIM)) f |= kFlagSendTrim;
  if (!readonly && (caps & NBDR_CAP_WRITE_ZEROES)) {
    f |= kFlagSendWriteZeroes;
    if (caps & NBDR_CAP_FAST_ZERO) f |= kFlagSendFastZero;
  }
  if (structured) f |= kFlagSendDf;
  if (caps & NBDR_CAP_MULTI_CONN) f |= kFlagCanMultiConn;
  if (caps & NBDR_CAP_CACHE) f |= kFlagSendCache;
  return f;
}

namespace {

// What a command may carry and whether it was advertised.
struct CommandRules {
  uint16_t allowed_flags = 0;
  bool has_range = true;
  bool writes = false;
  bool advertised = true;
  bool known = true;
};

CommandRules RulesFor(uint16_t type, const NegotiatedExport& e) {
  const uint16_t fua = (e.caps & NBDR_CAP_FUA) ? kCmdFlagFua : 0;
  CommandRules r;
  switch (type) {
    case kCmdRead:
      r.allowed_flags = e.structured ? kCmdFlagDf : 0;
      break;
    case kCmdWrite:
      r.allowed_flags = fua;
      r.writes = true;
      break;
    case kCmdFlush:
      r.has_range = false;
      r.advertised = e.caps & NBDR_CAP_FLUSH;
      break;
    case kCmdTrim:
      r.allowed_flags = fua;
      r.writes = true;
      r.advertised = e.caps & NBDR_CAP_TRIM;
      break;
    case kCmdWriteZeroes:
      r.allowed_flags =
          kCmdFlagNoHole | fua | ((e.caps & NBDR_CAP_FAST_ZERO) ? kCmdFlagFastZero : 0);
      r.writes = true;
      r.advertised = e.caps & NBDR_CAP_WRITE_ZEROES;
      break;
    case kCmdCache:
      r.advertised = e.caps & NBDR_CAP_CACHE;
      break;
    case kCmdBlockStatus:
      r.allowed_flags = kCmdFlagReqOne;
      break;
    default:
      r.known = false;
  }
  return r;
}

}  // namespace

uint32_t RequiredAlignment(const NegotiatedExport& e) {
  return e.client_knows_block_size ? e.min_block : 1;
}

int ValidateRequest(const RequestHeader& h, const NegotiatedExport& e, const char** why) {
  const CommandRules r = RulesFor(h.type, e);
  if (!r.known) {
    *why = "unknown command";
    return EINVAL;
  }
  if (h.type == kCmdBlockStatus && !e.base_allocation) {
    *why = "block status without a negotiated meta context";
    return EINVAL;
  }
  if (!r.advertised) {
    *why = "command not advertised for this export";
    return EINVAL;
  }
  if (h.flags & ~r.allowed_flags) {
    *why = "flags not valid for this command";
    return EINVAL;
  }
  if (r.writes && e.readonly) {
    *why = "export is read-only";
    return EPERM;
  }
  if (!r.has_range) return 0;
  if ((h.type == kCmdRead || h.type == kCmdWrite) && h.length > e.max_payload) {
    *why = "length exceeds the maximum payload";
    return EINVAL;
  }
  if (h.length == 0) {
    *why = "zero length";
    return EINVAL;
  }
  const uint64_t size = e.LiveSize();
  if (h.offset > size || h.length > size - h.offset) {
    *why = "range beyond the end of the export";
    return (h.type == kCmdWrite || h.type == kCmdWriteZeroes) ? ENOSPC : EINVAL;
  }
  const uint32_t align = RequiredAlignment(e);
  if ((h.offset % align) || (h.length % align)) {
    *why = "offset or length not aligned to the minimum block size";
    return EINVAL;
  }
  return 0;
}

}  // namespace nbdr
