// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// BufferPool: recycles request payload buffers so that large reads and
// writes do not fault in fresh pages on every request (glibc returns big
// freed blocks to the kernel). Buffers come in power-of-two size classes
// from 4 KiB up, 4 KiB aligned; at most max_cached_bytes are kept idle
// (one pool serves every connection, so idle connections hold nothing).
// Thread-safe: buffers are taken by a connection's reader thread and
// returned by whichever thread completes the request.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "utils/mutex.h"

namespace nbdr {

class BufferPool {
 public:
  explicit BufferPool(size_t max_cached_bytes) : max_cached_(max_cached_bytes) {}
  ~BufferPool();
  BufferPool(const BufferPool&) = delete;
  BufferPool& operator=(const BufferPool&) = delete;

  // A buffer of at least len bytes; *capacity receives its size class.
  // Give it back with Put(buf, capacity). Null when memory is short even
  // after the idle buffers were freed: the request fails, not the runner.
  uint8_t* Get(size_t len, size_t* capacity) EXCLUDES(mu_);
  void Put(uint8_t* buf, size_t capacity) EXCLUDES(mu_);
  // Frees every idle buffer.
  void Trim() EXCLUDES(mu_);

 private:
  static constexpr int kClasses = 16;  // 4 KiB << 0 .. 4 KiB << 15 (128 MiB)
  static int ClassOf(size_t len);

  const size_t max_cached_;
  Mutex mu_;
  std::vector<uint8_t*> free_[kClasses] GUARDED_BY(mu_);
  size_t cached_ GUARDED_BY(mu_) = 0;
};

}  // namespace nbdr
