// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// Unit tests of the event loop (utils/event_loop.h): one-shot waits on a
// socket and their timeouts, timers, persistent watches, and a Stop that
// drops what never fired.
#include "utils/event_loop.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <future>

#include "utils/unique_fd.h"

namespace nbdr {
namespace {

using std::chrono::milliseconds;

struct SocketPair {
  SocketPair() {
    int fds[2];
    EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
    a.reset(fds[0]);
    b.reset(fds[1]);
  }
  UniqueFd a, b;
};

TEST(EventLoop, WaitFiresWhenReadableAndOnTimeout) {
  EventLoop loop("test-loop");
  ASSERT_TRUE(loop.Start().ok());
  SocketPair sp;
  std::promise<bool> readable, timed_out;
  ASSERT_TRUE(loop.WhenReadable(sp.a.get(), milliseconds(0),
                                [&](bool r) { readable.set_value(r); }).ok());
  ASSERT_TRUE(loop.WhenReadable(sp.b.get(), milliseconds(50),
                                [&](bool r) { timed_out.set_value(r); }).ok());
  auto rf = readable.get_future();
  EXPECT_EQ(rf.wait_for(milliseconds(100)), std::future_status::timeout);  // nothing sent yet
  ASSERT_EQ(write(sp.b.get(), "x", 1), 1);
  EXPECT_TRUE(rf.get());
  EXPECT_FALSE(timed_out.get_future().get());
  EXPECT_EQ(loop.pending(), 0u);
}

TEST(EventLoop, TimersAndWatchesFire) {
  EventLoop loop("test-loop");
  ASSERT_TRUE(loop.Start().ok());
  std::promise<void> timer;
  ASSERT_TRUE(loop.After(milliseconds(10), [&] { timer.set_value(); }).ok());
  timer.get_future().get();

  SocketPair sp;
  std::atomic<int> fired{0};
  auto watch = loop.WatchReadable(sp.a.get(), [&] {
    char c;
    if (read(sp.a.get(), &c, 1) == 1) fired++;
  });
  ASSERT_TRUE(watch.ok());
  for (int i = 0; i < 3; i++) {
    ASSERT_EQ(write(sp.b.get(), "x", 1), 1);
    for (int t = 0; t < 200 && fired <= i; t++) usleep(1000);
  }
  EXPECT_EQ(fired, 3);
  watch->reset();  // stops watching: a later byte is not read
  ASSERT_EQ(write(sp.b.get(), "y", 1), 1);
  usleep(50000);
  EXPECT_EQ(fired, 3);
}

TEST(EventLoop, StopDropsWaitsThatNeverFired) {
  auto held = std::make_shared<int>(7);
  SocketPair sp;
  {
    EventLoop loop("test-loop");
    ASSERT_TRUE(loop.Start().ok());
    ASSERT_TRUE(loop.WhenReadable(sp.a.get(), milliseconds(0), [held](bool) { FAIL(); }).ok());
    EXPECT_EQ(loop.pending(), 1u);
    EXPECT_EQ(held.use_count(), 2);
    loop.Stop();
    EXPECT_EQ(held.use_count(), 1);  // the callback and what it held are gone
    EXPECT_FALSE(loop.After(milliseconds(0), [] {}).ok());  // not running
  }
}

TEST(EventLoop, StopRightAfterStartReturns) {
  for (int i = 0; i < 50; i++) {
    EventLoop loop("test-loop");
    ASSERT_TRUE(loop.Start().ok());
    loop.Stop();
  }
}

}  // namespace
}  // namespace nbdr
