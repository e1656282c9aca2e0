// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// Counting into ExportStats; see export_stats.h.
#include "runner/export_stats.h"

#include <cerrno>
#include <iterator>

#include "utils/nbd_protocol.h"

namespace nbdr {

static_assert(EIO == 5 && EPERM == 1 && ENOMEM == 12 && EINVAL == 22 && ENOSPC == 28 &&
                  EOVERFLOW == 75 && ENOTSUP == 95 && ESHUTDOWN == 108,
              "kCountedErrnos names Linux's errno values");

const char* StatOpName(StatOp op) {
  static const char* const kNames[] = {"read",         "write",        "flush", "trim",
                                       "write_zeroes", "block_status", "cache"};
  static_assert(std::size(kNames) == kStatOps);
  const size_t i = static_cast<size_t>(op);
  return i < std::size(kNames) ? kNames[i] : "?";
}

bool StatOpOf(uint16_t nbd_command, StatOp* op) {
  static constexpr struct {
    uint16_t command;
    StatOp op;
  } kOps[] = {{nbd::kCmdRead, StatOp::kRead},
              {nbd::kCmdWrite, StatOp::kWrite},
              {nbd::kCmdFlush, StatOp::kFlush},
              {nbd::kCmdTrim, StatOp::kTrim},
              {nbd::kCmdWriteZeroes, StatOp::kWriteZeroes},
              {nbd::kCmdBlockStatus, StatOp::kBlockStatus},
              {nbd::kCmdCache, StatOp::kCache}};
  for (const auto& o : kOps) {
    if (o.command != nbd_command) continue;
    *op = o.op;
    return true;
  }
  return false;
}

void ExportStats::Count(uint16_t nbd_command, uint64_t length, int error, int64_t nanos) {
  StatOp op;
  if (StatOpOf(nbd_command, &op)) Done(op, length, error, nanos);
}

const char* ErrnoSlotName(size_t slot) {
  static const char* const kNames[] = {"EIO",    "EPERM",     "ENOMEM",  "EINVAL",
                                       "ENOSPC", "EOVERFLOW", "ENOTSUP", "ESHUTDOWN"};
  static_assert(std::size(kNames) == kCountedErrnos.size());
  return slot < kCountedErrnos.size() ? kNames[slot] : "other";
}

void ExportStats::Done(StatOp op, uint64_t length, int error, int64_t nanos) {
  Op& o = ops[static_cast<size_t>(op)];
  o.requests.fetch_add(1, std::memory_order_relaxed);
  o.bytes.fetch_add(length, std::memory_order_relaxed);
  if (error) {
    o.errors.fetch_add(1, std::memory_order_relaxed);
    size_t slot = 0;
    while (slot < kCountedErrnos.size() && kCountedErrnos[slot] != error) slot++;
    errnos[slot].fetch_add(1, std::memory_order_relaxed);
  }
  if (nanos < 0) return;
  o.timed.fetch_add(1, std::memory_order_relaxed);
  o.nanos.fetch_add(static_cast<uint64_t>(nanos), std::memory_order_relaxed);
  const double seconds = static_cast<double>(nanos) / 1e9;
  for (size_t b = 0; b < kLatencyBounds.size(); b++) {
    if (seconds <= kLatencyBounds[b]) {
      o.buckets[b].fetch_add(1, std::memory_order_relaxed);
      break;
    }
  }
}

}  // namespace nbdr
