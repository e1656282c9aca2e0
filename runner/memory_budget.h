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
#include <set>

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
    if (!HasRoomLocked(bytes, held)) {
      auto need = waiting_.insert(NeedOf(bytes, held));
      l.Wait(&cv_, [&]() REQUIRES(mu_) { return HasRoomLocked(bytes, held); });
      waiting_.erase(need);
    }
    used_ += bytes;
  }
  // Wakes the waiters only when the one needing least now fits: a stream
  // of small releases beside hundreds of waiting large requests must not
  // wake them all each time (that cost fio beside 256 of them 75 % of its
  // speed).
  void Release(uint64_t bytes) EXCLUDES(mu_) {
    if (bytes == 0) return;
    MutexLock l(&mu_);
    used_ -= bytes;
    if (!waiting_.empty() && (used_ == 0 || used_ + *waiting_.begin() <= max_bytes_))
      cv_.notify_all();
  }
  uint64_t used() EXCLUDES(mu_) {
    MutexLock l(&mu_);
    return used_;
  }
  uint64_t max_bytes() const { return max_bytes_; }

 private:
  bool Modest(uint64_t bytes, uint64_t held) const { return held + bytes <= kModestInflight; }
  // What used_ plus this must stay within max_bytes_ for the request to fit.
  uint64_t NeedOf(uint64_t bytes, uint64_t held) const {
    return bytes + (Modest(bytes, held) ? 0 : reserve_);
  }
  bool HasRoomLocked(uint64_t bytes, uint64_t held) REQUIRES(mu_) {
    return used_ == 0 || used_ + NeedOf(bytes, held) <= max_bytes_;
  }

  const uint64_t max_bytes_;
  const uint64_t reserve_;  // for modest connections only
  Mutex mu_;
  std::condition_variable cv_;
  uint64_t used_ GUARDED_BY(mu_) = 0;
  std::multiset<uint64_t> waiting_ GUARDED_BY(mu_);  // NeedOf each waiting Take
};

}  // namespace nbdr
