// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// Unit tests of the stall watch behind fencing (runner/stall_watch.h): a
// loop that keeps beating shows no stall; one held longer than the stall
// limit shows it, first as an overdue beat, then as a counted stall that
// a connection started before it keeps seeing and one started after
// does not.
#include "runner/stall_watch.h"

#include <gtest/gtest.h>

#include <future>
#include <thread>

namespace nbdr {
namespace {

using std::chrono::milliseconds;

TEST(StallWatch, NoStallWhileTheLoopBeats) {
  EventLoop loop("test-loop");
  ASSERT_TRUE(loop.Start().ok());
  StallWatch watch(&loop, milliseconds(2000));
  ASSERT_TRUE(watch.Start().ok());
  const uint64_t at_start = watch.stalls();
  std::this_thread::sleep_for(StallWatch::kBeat * 3);
  EXPECT_FALSE(watch.StalledSince(at_start));
  EXPECT_EQ(watch.stalls(), at_start);
  loop.Stop();
}

TEST(StallWatch, AHeldLoopCountsAsAStall) {
  EventLoop loop("test-loop");
  ASSERT_TRUE(loop.Start().ok());
  StallWatch watch(&loop, milliseconds(400));
  ASSERT_TRUE(watch.Start().ok());
  const uint64_t before = watch.stalls();
  // Hold the loop thread (as SIGSTOP holds every thread) past the limit.
  std::promise<void> held, release;
  auto release_future = release.get_future();
  ASSERT_TRUE(loop.After(milliseconds(0), [&] {
                    held.set_value();
                    release_future.wait();
                  }).ok());
  held.get_future().wait();
  std::this_thread::sleep_for(milliseconds(400) + StallWatch::kBeat * 2);
  EXPECT_TRUE(watch.StalledSince(before)) << "an overdue beat is a stall";
  release.set_value();
  std::this_thread::sleep_for(StallWatch::kBeat * 2);
  EXPECT_EQ(watch.stalls(), before + 1);
  EXPECT_TRUE(watch.StalledSince(before)) << "a connection older than the stall";
  EXPECT_FALSE(watch.StalledSince(watch.stalls())) << "a connection made after it";
  loop.Stop();
}

}  // namespace
}  // namespace nbdr
