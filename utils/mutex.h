// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// Mutex and MutexLock: std::mutex with thread-safety annotations, and the
// scoped guard through which every lock in nbd-runner is taken.
// Mutex is thread-safe; MutexLock is used by one thread.
#pragma once

#include <condition_variable>
#include <mutex>

#include "utils/thread_annotations.h"

namespace nbdr {

class CAPABILITY("mutex") Mutex {
 public:
  Mutex() = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;
  void Lock() ACQUIRE() { mu_.lock(); }
  void Unlock() RELEASE() { mu_.unlock(); }
  // True when the lock was free and is now held; never waits.
  bool TryLock() TRY_ACQUIRE(true) { return mu_.try_lock(); }
  std::mutex& native() { return mu_; }

 private:
  std::mutex mu_;
};

class SCOPED_CAPABILITY MutexLock {
 public:
  explicit MutexLock(Mutex* mu) ACQUIRE(mu) : lock_(mu->native()) {}
  ~MutexLock() RELEASE() {}
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;
  // Waits on cv, releasing the mutex meanwhile.
  template <typename Pred>
  void Wait(std::condition_variable* cv, Pred pred) {
    cv->wait(lock_, pred);
  }
  template <typename Rep, typename Period, typename Pred>
  bool WaitFor(std::condition_variable* cv, std::chrono::duration<Rep, Period> d, Pred pred) {
    return cv->wait_for(lock_, d, pred);
  }
  // Lets go of the mutex for a stretch that must not hold it (a slow call);
  // Relock takes it back. The guard releases it at the end either way.
  void Unlock() RELEASE() { lock_.unlock(); }
  void Relock() ACQUIRE() { lock_.lock(); }

 private:
  std::unique_lock<std::mutex> lock_;
};

}  // namespace nbdr
