// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// InflightBudget: bounds one connection's requests in flight, in number
// and in bytes, from the moment a request is read until its reply is
// written, so a client that floods requests or never reads replies is
// slowed down, not served from unbounded memory. Every request, refusals
// included, holds a slot. The bytes are also taken from the runner's
// MemoryBudget (when given), after the connection's own room. Thread-safe.
#pragma once

#include <condition_variable>
#include <cstdint>

#include "runner/memory_budget.h"
#include "utils/mutex.h"

namespace nbdr {

class InflightBudget {
 public:
  InflightBudget(uint64_t max_bytes, uint64_t max_requests, MemoryBudget* memory = nullptr)
      : max_bytes_(max_bytes), max_requests_(max_requests), memory_(memory) {}
  InflightBudget(const InflightBudget&) = delete;
  InflightBudget& operator=(const InflightBudget&) = delete;

  // Whether a request of bytes would get a slot now without waiting.
  bool HasRoom(uint64_t bytes) EXCLUDES(mu_) {
    uint64_t held;
    {
      MutexLock l(&mu_);
      if (!HasRoomLocked(bytes)) return false;
      held = bytes_;
    }
    return !memory_ || memory_->HasRoom(bytes, held);
  }
  // Takes a slot for a request of bytes, waiting for room. With nothing in
  // flight a request always fits, however large.
  void Take(uint64_t bytes) EXCLUDES(mu_) {
    uint64_t held;  // this connection's bytes before this request
    {
      MutexLock l(&mu_);
      l.Wait(&cv_, [&]() REQUIRES(mu_) { return HasRoomLocked(bytes); });
      held = bytes_;
      count_++;
      bytes_ += bytes;
    }
    if (memory_) memory_->Take(bytes, held);
  }
  // Gives back count slots holding bytes in all.
  void Release(uint64_t count, uint64_t bytes) EXCLUDES(mu_) {
    if (memory_) memory_->Release(bytes);
    MutexLock l(&mu_);
    count_ -= count;
    bytes_ -= bytes;
    cv_.notify_all();  // under the lock: the owner may go away once it sees zero
  }
  // Whether requests other than the caller's own slots are in flight.
  bool InFlightBesides(uint64_t own) EXCLUDES(mu_) {
    MutexLock l(&mu_);
    return count_ > own;
  }
  // Waits until nothing is in flight.
  void WaitForDrain() EXCLUDES(mu_) {
    MutexLock l(&mu_);
    l.Wait(&cv_, [&]() REQUIRES(mu_) { return count_ == 0; });
  }

 private:
  bool HasRoomLocked(uint64_t bytes) REQUIRES(mu_) {
    return count_ == 0 || (bytes_ + bytes <= max_bytes_ && count_ < max_requests_);
  }

  const uint64_t max_bytes_;
  const uint64_t max_requests_;
  MemoryBudget* const memory_;  // the runner's, or null
  Mutex mu_;
  std::condition_variable cv_;
  uint64_t count_ GUARDED_BY(mu_) = 0;
  uint64_t bytes_ GUARDED_BY(mu_) = 0;
};

}  // namespace nbdr
