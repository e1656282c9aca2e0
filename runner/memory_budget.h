// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// MemoryBudget: the payload bytes of every NBD request in flight in the
// whole runner (max-buffer-memory). Each connection's InflightBudget also
// takes its requests' bytes here, so that many connections together
// (each within its own limit) wait for room instead of growing the
// runner past the budget: 24 clients that each asked for six 32 MiB
// reads and never read the replies used to take 1.6 GB. With nothing in
// flight anywhere a request always fits, so one larger than the budget
// is still served.
//
// An eighth of the budget is kept for modest connections (at most
// kModestInflight of their own in flight): greedy connections that filled
// the rest with replies they never read cannot starve a client doing
// ordinary I/O on another export until their send timeout drops them
// (fio's 4K reads beside 256 such connections got 22 % of their speed
// alone). Thread-safe.
#pragma once

#include <condition_variable>
#include <cstdint>

#include "utils/mutex.h"

namespace nbdr {

class MemoryBudget {
 public:
  static constexpr uint64_t kModestInflight = 8u << 20;

  explicit MemoryBudget(uint64_t max_bytes) : max_bytes_(max_bytes), reserve_(max_bytes / 8) {}
  MemoryBudget(const MemoryBudget&) = delete;
  MemoryBudget& operator=(const MemoryBudget&) = delete;

  // held: what the asking connection has in flight already.
  bool HasRoom(uint64_t bytes, uint64_t held = 0) EXCLUDES(mu_) {
    MutexLock l(&mu_);
    return HasRoomLocked(bytes, held);
  }
  // Waits for room for bytes, then takes them.
  void Take(uint64_t bytes, uint64_t held = 0) EXCLUDES(mu_) {
    if (bytes == 0) return;
    MutexLock l(&mu_);
    l.Wait(&cv_, [&]() REQUIRES(mu_) { return HasRoomLocked(bytes, held); });
    used_ += bytes;
  }
  void Release(uint64_t bytes) EXCLUDES(mu_) {
    if (bytes == 0) return;
    MutexLock l(&mu_);
    used_ -= bytes;
    cv_.notify_all();
  }
  uint64_t used() EXCLUDES(mu_) {
    MutexLock l(&mu_);
    return used_;
  }
  uint64_t max_bytes() const { return max_bytes_; }

 private:
  bool HasRoomLocked(uint64_t bytes, uint64_t held) REQUIRES(mu_) {
    if (used_ == 0 || used_ + bytes <= max_bytes_ - reserve_) return true;
    return held + bytes <= kModestInflight && used_ + bytes <= max_bytes_;
  }

  const uint64_t max_bytes_;
  const uint64_t reserve_;  // for modest connections only
  Mutex mu_;
  std::condition_variable cv_;
  uint64_t used_ GUARDED_BY(mu_) = 0;
};

}  // namespace nbdr
