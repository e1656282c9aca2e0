// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// The bitmap of written granules behind DirtyRanges; see dirty_ranges.h.
#include "runner/dirty_ranges.h"

#include <algorithm>
#include <bit>

namespace nbdr {

namespace {

constexpr unsigned kMinShift = 16;           // 64 KiB granules at least
constexpr uint64_t kMaxGranules = 1u << 21;  // 256 KiB of bits at most

// The bits of one word from bit first to bit last (both within it).
uint64_t WordMask(unsigned first, unsigned last) {
  const uint64_t upto = last == 63 ? ~uint64_t{0} : (uint64_t{1} << (last + 1)) - 1;
  return upto & ~((uint64_t{1} << first) - 1);
}

}  // namespace

DirtyRanges::DirtyRanges(uint64_t size) : size_(size) {
  shift_ = kMinShift;
  while (((size_ + granule() - 1) >> shift_) > kMaxGranules) shift_++;
  granules_ = (size_ + granule() - 1) >> shift_;
  nwords_ = static_cast<size_t>((granules_ + 63) / 64);
  words_ = std::make_unique<std::atomic<uint64_t>[]>(nwords_);
  for (size_t i = 0; i < nwords_; i++) words_[i].store(0, std::memory_order_relaxed);
}

void DirtyRanges::Mark(uint64_t offset, uint64_t length) {
  if (length == 0 || offset >= size_) return;
  const uint64_t end = std::min(size_, offset + std::min(length, size_ - offset));
  const uint64_t first = offset >> shift_, last = (end - 1) >> shift_;
  for (uint64_t w = first / 64; w <= last / 64; w++) {
    const unsigned lo = w == first / 64 ? static_cast<unsigned>(first % 64) : 0;
    const unsigned hi = w == last / 64 ? static_cast<unsigned>(last % 64) : 63;
    words_[w].fetch_or(WordMask(lo, hi), std::memory_order_release);
  }
}

uint64_t DirtyRanges::GranuleBytes(uint64_t index) const {
  const uint64_t start = index << shift_;
  return std::min(granule(), size_ - start);
}

uint64_t DirtyRanges::MarkedBytes() const {
  uint64_t bytes = 0;
  for (size_t w = 0; w < nwords_; w++) {
    uint64_t bits = words_[w].load(std::memory_order_acquire);
    bytes += static_cast<uint64_t>(std::popcount(bits)) << shift_;
    // The last granule may be short.
    if (w + 1 == nwords_ && bits && (bits >> ((granules_ - 1) % 64)) & 1)
      bytes -= granule() - GranuleBytes(granules_ - 1);
  }
  return bytes;
}

std::vector<uint64_t> DirtyRanges::Take(uint64_t* bytes) {
  std::vector<uint64_t> ranges;
  *bytes = 0;
  for (size_t w = 0; w < nwords_; w++) {
    uint64_t bits = words_[w].exchange(0, std::memory_order_acq_rel);
    while (bits) {
      const uint64_t index = w * 64 + static_cast<unsigned>(std::countr_zero(bits));
      bits &= bits - 1;
      const uint64_t start = index << shift_, len = GranuleBytes(index);
      *bytes += len;
      if (!ranges.empty() && ranges[ranges.size() - 2] + ranges.back() == start)
        ranges.back() += len;
      else
        ranges.insert(ranges.end(), {start, len});
    }
  }
  return ranges;
}

}  // namespace nbdr
