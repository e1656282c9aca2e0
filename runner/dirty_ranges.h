// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// DirtyRanges: which parts of an export were written while a snapshot of
// it was being copied (backstore_registry_snapshot.cc), so that only
// those are copied again. One bit per granule: at least 64 KiB, and at
// most 2^21 granules (256 KiB of bits, for any export size). Writers mark
// without a lock, from any thread; one thread at a time takes the marks.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

namespace nbdr {

class DirtyRanges {
 public:
  explicit DirtyRanges(uint64_t size);

  // Marks [offset, offset+length) (clipped to the size) as written. Call
  // it after the data reached the handler: a copy that starts after the
  // mark was seen reads it.
  void Mark(uint64_t offset, uint64_t length);
  // How many bytes are marked now (whole granules, clipped to the size).
  uint64_t MarkedBytes() const;
  // The marked ranges as (offset, length) pairs, merged and clipped to the
  // size, and clears them; *bytes is their total.
  std::vector<uint64_t> Take(uint64_t* bytes);

  uint64_t granule() const { return uint64_t{1} << shift_; }

 private:
  uint64_t GranuleBytes(uint64_t index) const;

  const uint64_t size_;
  unsigned shift_ = 16;
  uint64_t granules_ = 0;
  size_t nwords_ = 0;
  std::unique_ptr<std::atomic<uint64_t>[]> words_;
};

}  // namespace nbdr
