// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// Unit tests of DirtyRanges (runner/dirty_ranges.h), the record of what
// writes changed while a snapshot was copied: marks round out to whole
// granules, neighbours merge, the short last granule is clipped to the
// export's size, Take clears what it returns, a huge export keeps the
// bitmap bounded, and marks from many threads are all seen.
#include "runner/dirty_ranges.h"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

namespace nbdr {
namespace {

constexpr uint64_t kKiB = 1024, kMiB = kKiB * 1024;

TEST(DirtyRanges, MarksRoundOutToGranulesAndMerge) {
  DirtyRanges d(10 * kMiB);
  ASSERT_EQ(d.granule(), 64 * kKiB);
  d.Mark(100, 1);                // granule 0
  d.Mark(64 * kKiB + 5, 10);     // granule 1: merges with 0
  d.Mark(5 * kMiB, 128 * kKiB);  // granules 80, 81
  d.Mark(0, 0);                  // nothing
  EXPECT_EQ(d.MarkedBytes(), 4 * 64 * kKiB);
  uint64_t bytes = 0;
  EXPECT_EQ(d.Take(&bytes), (std::vector<uint64_t>{0, 128 * kKiB, 5 * kMiB, 128 * kKiB}));
  EXPECT_EQ(bytes, 256 * kKiB);
  EXPECT_TRUE(d.Take(&bytes).empty());
  EXPECT_EQ(bytes, 0u);
  EXPECT_EQ(d.MarkedBytes(), 0u);
}

TEST(DirtyRanges, ClipsToTheSize) {
  const uint64_t size = 64 * kKiB * 130 + 4096;  // a short last granule, in the third word
  DirtyRanges d(size);
  d.Mark(size - 1, 100);  // past the end: clipped
  d.Mark(size, 10);       // at the end: nothing
  EXPECT_EQ(d.MarkedBytes(), 4096u);
  uint64_t bytes = 0;
  EXPECT_EQ(d.Take(&bytes), (std::vector<uint64_t>{64 * kKiB * 130, 4096}));
  d.Mark(0, ~uint64_t{0});  // everything, without overflowing
  EXPECT_EQ(d.MarkedBytes(), size);
  EXPECT_EQ(d.Take(&bytes), (std::vector<uint64_t>{0, size}));
  EXPECT_EQ(bytes, size);
}

TEST(DirtyRanges, HugeExportsKeepTheBitmapBounded) {
  DirtyRanges d(uint64_t{1} << 50);  // 1 PiB: 2^21 granules of 512 MiB
  EXPECT_EQ(d.granule(), uint64_t{1} << 29);
  d.Mark((uint64_t{1} << 50) - 1, 1);
  uint64_t bytes = 0;
  EXPECT_EQ(d.Take(&bytes),
            (std::vector<uint64_t>{(uint64_t{1} << 50) - (uint64_t{1} << 29), uint64_t{1} << 29}));
  DirtyRanges empty(0);
  empty.Mark(0, 10);
  EXPECT_TRUE(empty.Take(&bytes).empty());
}

TEST(DirtyRanges, MarksFromManyThreadsAreAllSeen) {
  DirtyRanges d(64 * kMiB);  // 1024 granules
  std::vector<std::thread> writers;
  for (int t = 0; t < 4; t++)
    writers.emplace_back([&d, t] {
      for (uint64_t g = static_cast<uint64_t>(t); g < 1024; g += 4) d.Mark(g * 64 * kKiB, 1);
    });
  for (auto& w : writers) w.join();
  uint64_t bytes = 0;
  EXPECT_EQ(d.Take(&bytes), (std::vector<uint64_t>{0, 64 * kMiB}));
}

}  // namespace
}  // namespace nbdr
