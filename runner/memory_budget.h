// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// MemoryBudget: the payload bytes of every NBD request in flight in the
// whole runner (max-buffer-memory). Each connection's InflightBudget also
// takes its requests' bytes here, so that many connections together
// (each within its own limit) wait for room instead of growing the
// runner past the budget: 24 clients that each asked for six 32 MiB
// reads and never read the replies used to take 1.6 GB. With nothing in
// flight anywhere a request always fits, so one larger than the budget
// is still served. Thread-safe.
#pragma once

#include <condition_variable>
#include <cstdint>

#include "utils/mutex.h"

namespace nbdr {

class MemoryBudget {
 public:
  explicit MemoryBudget(uint64_t max_bytes) : max_bytes_(max_bytes) {}
  MemoryBudget(const MemoryBudget&) = delete;
  MemoryBudget& operator=(const MemoryBudget&) = delete;

  bool HasRoom(uint64_t bytes) EXCLUDES(mu_) {
    MutexLock l(&mu_);
    return HasRoomLocked(bytes);
  }
  // Waits for room for bytes, then takes them.
  void Take(uint64_t bytes) EXCLUDES(mu_) {
    if (bytes == 0) return;
    MutexLock l(&mu_);
    l.Wait(&cv_, [&]() REQUIRES(mu_) { return HasRoomLocked(bytes); });
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
  bool HasRoomLocked(uint64_t bytes) REQUIRES(mu_) {
    return used_ == 0 || used_ + bytes <= max_bytes_;
  }

  const uint64_t max_bytes_;
  Mutex mu_;
  std::condition_variable cv_;
  uint64_t used_ GUARDED_BY(mu_) = 0;
};

}  // namespace nbdr
