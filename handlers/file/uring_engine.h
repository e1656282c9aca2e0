// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// UringEngine: the file handler's io_uring path (file-io = uring). Reads,
// writes (FUA as RWF_DSYNC) and flushes (fdatasync) go to one ring shared
// by every export of the handler; one thread reaps completions and
// completes the requests, resubmitting the rest of a short transfer.
//
// Thread-safety: Submit may be called from any thread (the submission
// queue is under a mutex); the destructor waits for the reaper and must
// run when no request is in flight.
#pragma once

#include <liburing.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "nbd-runner/handler.h"
#include "utils/mutex.h"

class UringEngine {
 public:
  // Runs a request some other way (the handler's worker pool) when the
  // ring cannot take the rest of it.
  using Fallback = std::function<void(nbdr_request*)>;
  // Sets up a ring of `entries`; on failure returns null with why set
  // (io_uring disabled or unsupported by the kernel).
  static UringEngine* Create(unsigned entries, Fallback fallback, std::string* why);
  ~UringEngine();
  UringEngine(const UringEngine&) = delete;
  UringEngine& operator=(const UringEngine&) = delete;

  // Starts r (READ, WRITE or FLUSH) on fd; false when the ring cannot take
  // it right now (the caller then runs it some other way).
  bool Submit(int fd, nbdr_request* r);

 private:
  struct Op;
  UringEngine() = default;
  // Queues op's next step; false when no submission entry is free.
  bool Queue(Op* op);
  void Reap();

  io_uring ring_{};
  Fallback fallback_;
  nbdr::Mutex sq_mu_;  // guards the submission queue
  // Entries queued but not yet accepted by the kernel (a failed
  // io_uring_submit); the reaper submits them again.
  std::atomic<bool> unsubmitted_{false};
  std::atomic<bool> stopping_{false};
  std::thread reaper_;
};
