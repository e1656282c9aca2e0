// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// LogThrottle: lets a repeated warning through at most once per interval
// and counts what it held back, so that a flood (a peer opening
// connections as fast as it can while threads or descriptors are
// exhausted) cannot fill the log or cost a line per attempt.
// Thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>

namespace nbdr {

class LogThrottle {
 public:
  explicit LogThrottle(std::chrono::milliseconds interval = std::chrono::seconds(1))
      : interval_(interval) {}

  // True when this occurrence may be logged; *held_back is then how many
  // were not since the last one that was.
  bool Allow(uint64_t* held_back) {
    std::lock_guard<std::mutex> l(mu_);
    const auto now = std::chrono::steady_clock::now();
    if (logged_once_ && now - last_ < interval_) {
      held_back_++;
      return false;
    }
    logged_once_ = true;
    last_ = now;
    *held_back = held_back_;
    held_back_ = 0;
    return true;
  }

  // What to append to the line Allow let through: "" or
  // " (and N more since the last)".
  static std::string HeldBackNote(uint64_t held_back) {
    return held_back ? " (and " + std::to_string(held_back) + " more since the last)" : "";
  }

 private:
  const std::chrono::milliseconds interval_;
  std::mutex mu_;
  bool logged_once_ = false;
  std::chrono::steady_clock::time_point last_;
  uint64_t held_back_ = 0;
};

}  // namespace nbdr
