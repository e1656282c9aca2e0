// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// Payload buffer recycling; see buffer_pool.h.
#include "runner/buffer_pool.h"

#include <cstdlib>

namespace nbdr {

BufferPool::~BufferPool() {
  MutexLock l(&mu_);
  for (auto& list : free_)
    for (uint8_t* b : list) free(b);
}

int BufferPool::ClassOf(size_t len) {
  int c = 0;
  size_t size = 4096;
  while (size < len && c < kClasses - 1) {
    size <<= 1;
    c++;
  }
  return c;
}

uint8_t* BufferPool::Get(size_t len, size_t* capacity) {
  int c = ClassOf(len);
  size_t size = size_t{4096} << c;
  if (size < len) {  // beyond the largest class: not pooled
    *capacity = len;
    return static_cast<uint8_t*>(aligned_alloc(4096, (len + 4095) & ~size_t{4095}));
  }
  *capacity = size;
  {
    MutexLock l(&mu_);
    if (!free_[c].empty()) {
      uint8_t* b = free_[c].back();
      free_[c].pop_back();
      cached_ -= size;
      return b;
    }
  }
  void* p = aligned_alloc(4096, size);
  if (!p) {
    // Out of memory: what the pool keeps idle goes back first.
    Trim();
    p = aligned_alloc(4096, size);
  }
  return static_cast<uint8_t*>(p);
}

void BufferPool::Trim() {
  MutexLock l(&mu_);
  for (auto& list : free_) {
    for (uint8_t* b : list) free(b);
    list.clear();
  }
  cached_ = 0;
}

void BufferPool::Put(uint8_t* buf, size_t capacity) {
  if (!buf) return;
  int c = ClassOf(capacity);
  if ((size_t{4096} << c) == capacity) {
    MutexLock l(&mu_);
    if (cached_ + capacity <= max_cached_) {
      free_[c].push_back(buf);
      cached_ += capacity;
      return;
    }
  }
  free(buf);
}

}  // namespace nbdr
