// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// The beat behind StallWatch; see stall_watch.h.
#include "runner/stall_watch.h"

#include "utils/log.h"

namespace nbdr {

int64_t StallWatch::NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

Status StallWatch::Start() {
  last_beat_ns_.store(NowNs());
  return loop_->After(kBeat, [this] { Beat(); });
}

void StallWatch::Beat() {
  const int64_t now = NowNs();
  const int64_t gap = now - last_beat_ns_.load();
  // The count goes up before the beat is stored: whoever sees the new
  // beat sees the stall too (both are sequentially consistent).
  if (gap > std::chrono::nanoseconds(stall_).count()) {
    stalls_.fetch_add(1);
    LOG_WARN("fencing", "this process did not run for %.1f s (stopped, paused or starved): "
             "kernel mappings' connections drop the writes they still hold",
             static_cast<double>(gap) / 1e9);
  }
  last_beat_ns_.store(now);
  if (Status s = loop_->After(kBeat, [this] { Beat(); }); !s.ok())
    LOG_DEBUG("fencing", "no more beats: %s", s.message().c_str());
}

bool StallWatch::StalledSince(uint64_t seen) const {
  const int64_t now = NowNs();
  if (now - last_beat_ns_.load() > std::chrono::nanoseconds(stall_).count()) return true;
  return stalls_.load() != seen;
}

}  // namespace nbdr
