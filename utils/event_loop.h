// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// EventLoop: one libevent event_base and the thread that runs it. What
// waits without work to do waits here instead of holding a thread of its
// own: listening sockets, connections parked between handshake options
// or between requests, and their deadlines.
//
// Thread-safety: every method may be called from any thread (libevent's
// pthreads locking is turned on before the base is made). Callbacks run on
// the loop thread and must not block: one that has work to do hands it to
// a thread of its own.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <thread>

#include "utils/mutex.h"
#include "utils/status.h"

struct event;
struct event_base;

namespace nbdr {

// Turns libevent's pthreads locking on (once; before any base is made):
// what lets another thread add events to, or break, a running loop.
void EnableLibeventThreads();
// Breaks base's loop from inside it, so that a loop thread not yet in
// event_base_loop still sees it (a break asked before would be forgotten).
void BreakLoopFromInside(event_base* base);

class EventLoop {
 public:
  // name is used in log lines and as the thread's name ("nbd-loop").
  explicit EventLoop(std::string name) : name_(std::move(name)) {}
  ~EventLoop() { Stop(); }
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  // Starts the loop thread (once; later calls do nothing).
  Status Start();
  // Ends the loop thread. Waits that never fired are dropped with their
  // callbacks (which are not called). Idempotent.
  void Stop();

  // Calls fn(true) once fd is readable (or at its end), or fn(false) once
  // timeout passed first (zero: no timeout). Fires once. Fails only when
  // the loop is not running or libevent cannot add the event.
  Status WhenReadable(int fd, std::chrono::milliseconds timeout, std::function<void(bool)> fn);
  // Calls fn on the loop thread after delay.
  Status After(std::chrono::milliseconds delay, std::function<void()> fn);

  // A persistent watch: fn runs each time fd is readable, until the watch
  // is destroyed (which waits for a callback running meanwhile; never
  // destroy it from its own callback).
  class Watch {
   public:
    ~Watch();
    Watch(const Watch&) = delete;
    Watch& operator=(const Watch&) = delete;

   private:
    friend class EventLoop;
    Watch() = default;
    static void Fire(int fd, short what, void* arg);
    event* ev_ = nullptr;
    std::function<void()> fn_;
  };
  Expected<std::unique_ptr<Watch>> WatchReadable(int fd, std::function<void()> fn);

  // One-shot waits registered and not yet fired (for tests and logs).
  size_t pending() const EXCLUDES(mu_);

 private:
  struct Once;
  static void FireOnce(int fd, short what, void* arg);
  Status AddOnce(int fd, std::chrono::milliseconds timeout, std::function<void(bool)> fn);

  const std::string name_;
  event_base* base_ = nullptr;
  std::thread thread_;
  mutable Mutex mu_;
  std::set<Once*> once_ GUARDED_BY(mu_);
};

}  // namespace nbdr
