// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// StallWatch: notices that this process did not run for a while — it was
// stopped (SIGSTOP), its VM paused, its host starved it. A kernel
// mapping's client may have given up the requests it sent meanwhile and
// sent them through another runner (high availability): fencing asks
// StalledSince before each write on such a connection and, after a
// stall, drops the connection without executing what it still holds.
//
// A timer on the event loop beats every kBeat; a beat that comes more
// than `stall` after the one before counts a stall. A caller that asks
// before the late beat ran sees the beat overdue instead.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

#include "utils/event_loop.h"
#include "utils/status.h"

namespace nbdr {

class StallWatch {
 public:
  static constexpr std::chrono::milliseconds kBeat{250};

  // loop must outlive the watch's beats: stop the loop before the watch
  // goes away (its pending beat is then dropped, never called).
  StallWatch(EventLoop* loop, std::chrono::milliseconds stall) : loop_(loop), stall_(stall) {}

  // Starts beating on the loop, which must be running.
  Status Start();
  // The stalls counted so far: what a connection remembers when it starts.
  uint64_t stalls() const { return stalls_.load(); }
  // Whether the process stalled since stalls() returned `seen`, or is
  // stalled now (the last beat is overdue).
  bool StalledSince(uint64_t seen) const;

 private:
  void Beat();
  static int64_t NowNs();

  EventLoop* const loop_;
  const std::chrono::milliseconds stall_;
  std::atomic<int64_t> last_beat_ns_{0};
  std::atomic<uint64_t> stalls_{0};
};

}  // namespace nbdr
