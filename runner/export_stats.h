// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// ExportStats: what the NBD clients of one export did, since the runner
// started: requests, bytes and a latency histogram per request type,
// errors per errno, requests in flight, connections. The transmission
// engine counts into it (relaxed atomics: one add per counter per
// request, no lock); the metrics endpoint (metrics_text.h) reads it. The
// registry keeps one per export for as long as the backstore exists, so
// the counts outlive the export's opens.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>

namespace nbdr {

enum class StatOp { kRead, kWrite, kFlush, kTrim, kWriteZeroes, kBlockStatus, kCache };
inline constexpr int kStatOps = 7;
// The name of op in metrics ("read", "write_zeroes", ...).
const char* StatOpName(StatOp op);
// The StatOp of an NBD command (nbd::kCmd*); false for one not counted
// (disconnect, or a command the runner does not know).
bool StatOpOf(uint16_t nbd_command, StatOp* op);

// Upper bounds of the latency histogram's buckets, in seconds (the last,
// +Inf, is implicit: every request counts in it).
inline constexpr std::array<double, 13> kLatencyBounds = {
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5};

// The errnos counted one by one (what NBD can carry back, and what
// handlers report); the rest count as "other".
inline constexpr std::array<int, 8> kCountedErrnos = {
    5 /*EIO*/,     1 /*EPERM*/,      12 /*ENOMEM*/,  22 /*EINVAL*/,
    28 /*ENOSPC*/, 75 /*EOVERFLOW*/, 95 /*ENOTSUP*/, 108 /*ESHUTDOWN*/};
// "EIO", ..., or "other" for index kCountedErrnos.size().
const char* ErrnoSlotName(size_t slot);

struct ExportStats {
  struct Op {
    std::atomic<uint64_t> requests{0};
    std::atomic<uint64_t> bytes{0};  // the requests' lengths
    std::atomic<uint64_t> errors{0};
    std::atomic<uint64_t> nanos{0};  // the sum of the timed requests' latencies
    std::atomic<uint64_t> timed{0};  // requests in the histogram (those the handler ran)
    std::array<std::atomic<uint64_t>, kLatencyBounds.size()> buckets{};  // not cumulative
  };
  std::array<Op, kStatOps> ops;
  std::array<std::atomic<uint64_t>, kCountedErrnos.size() + 1> errnos{};
  std::atomic<int64_t> in_flight{0};
  std::atomic<int64_t> connections{0};
  std::atomic<uint64_t> connections_total{0};

  // A request that ended: error 0 or its errno; nanos its latency, or a
  // negative value for one refused without reaching the handler (not in
  // the histogram).
  void Done(StatOp op, uint64_t length, int error, int64_t nanos);
  // The same for an NBD command; one not counted is ignored.
  void Count(uint16_t nbd_command, uint64_t length, int error, int64_t nanos);
};

}  // namespace nbdr
