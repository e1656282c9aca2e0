// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// The event loop thread over libevent; see event_loop.h.
#include "utils/event_loop.h"

#include <event2/event.h>
#include <event2/thread.h>
#include <pthread.h>
#include <sys/time.h>

#include <cerrno>
#include <mutex>
#include <system_error>

#include "utils/log.h"

namespace nbdr {

namespace {

timeval ToTimeval(std::chrono::milliseconds d) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(d.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((d.count() % 1000) * 1000);
  return tv;
}

}  // namespace

// A one-shot wait: its event and what to call. Freed by whoever takes it
// out of once_ (the callback, or Stop).
struct EventLoop::Once {
  EventLoop* loop;
  event* ev = nullptr;
  std::function<void(bool)> fn;
};

void EnableLibeventThreads() {
  static std::once_flag threads_on;
  std::call_once(threads_on, [] { evthread_use_pthreads(); });
}

void BreakLoopFromInside(event_base* base) {
  const timeval now{};
  event_base_once(
      base, -1, EV_TIMEOUT,
      [](evutil_socket_t, short, void* b) { event_base_loopbreak(static_cast<event_base*>(b)); },
      base, &now);
}

Status EventLoop::Start() {
  if (base_) return Status();
  EnableLibeventThreads();
  base_ = event_base_new();
  if (!base_) return Status::Error(ENOMEM, name_ + ": cannot create the libevent base");
  try {
    thread_ = std::thread([this] {
      pthread_setname_np(pthread_self(), name_.substr(0, 15).c_str());
      // EVLOOP_NO_EXIT_ON_EMPTY: the loop waits for events added later.
      if (event_base_loop(base_, EVLOOP_NO_EXIT_ON_EMPTY) < 0)
        LOG_ERROR(name_, "the event loop failed");
    });
  } catch (const std::system_error& e) {
    event_base_free(base_);
    base_ = nullptr;
    return Status::Error(EAGAIN, name_ + ": cannot start the event loop thread: " + e.what());
  }
  return Status();
}

void EventLoop::Stop() {
  if (!base_) return;
  if (thread_.joinable()) {
    BreakLoopFromInside(base_);
    thread_.join();
  }
  std::set<Once*> left;
  {
    MutexLock l(&mu_);
    left.swap(once_);
  }
  for (Once* o : left) {
    event_free(o->ev);
    delete o;  // its callback is dropped unheard
  }
  event_base_free(base_);
  base_ = nullptr;
}

Status EventLoop::WhenReadable(int fd, std::chrono::milliseconds timeout,
                               std::function<void(bool)> fn) {
  return AddOnce(fd, timeout, std::move(fn));
}

Status EventLoop::After(std::chrono::milliseconds delay, std::function<void()> fn) {
  return AddOnce(-1, delay, [fn = std::move(fn)](bool) { fn(); });
}

Status EventLoop::AddOnce(int fd, std::chrono::milliseconds timeout,
                          std::function<void(bool)> fn) {
  if (!base_) return Status::Error(ESHUTDOWN, name_ + ": the event loop is not running");
  auto* o = new Once{this, nullptr, std::move(fn)};
  o->ev = event_new(base_, fd, fd >= 0 ? EV_READ : 0, &EventLoop::FireOnce, o);
  if (!o->ev) {
    delete o;
    return Status::Error(ENOMEM, name_ + ": cannot create an event");
  }
  {
    MutexLock l(&mu_);
    once_.insert(o);
  }
  const timeval tv = ToTimeval(timeout);
  // A timer always has its delay (zero: at once); a wait on fd only a
  // nonzero one.
  if (event_add(o->ev, fd < 0 || timeout.count() > 0 ? &tv : nullptr) != 0) {
    {
      MutexLock l(&mu_);
      once_.erase(o);
    }
    event_free(o->ev);
    delete o;
    return Status::Error(EIO, name_ + ": cannot add an event");
  }
  return Status();
}

void EventLoop::FireOnce(int /*fd*/, short what, void* arg) {
  auto* o = static_cast<Once*>(arg);
  {
    MutexLock l(&o->loop->mu_);
    if (o->loop->once_.erase(o) == 0) return;  // Stop took it
  }
  std::function<void(bool)> fn = std::move(o->fn);
  event_free(o->ev);
  delete o;
  fn((what & EV_READ) != 0);
}

size_t EventLoop::pending() const {
  MutexLock l(&mu_);
  return once_.size();
}

Expected<std::unique_ptr<EventLoop::Watch>> EventLoop::WatchReadable(int fd,
                                                                     std::function<void()> fn) {
  if (!base_) return Status::Error(ESHUTDOWN, name_ + ": the event loop is not running");
  std::unique_ptr<Watch> w(new Watch());
  w->fn_ = std::move(fn);
  w->ev_ = event_new(base_, fd, EV_READ | EV_PERSIST, &Watch::Fire, w.get());
  if (!w->ev_) return Status::Error(ENOMEM, name_ + ": cannot create an event");
  if (event_add(w->ev_, nullptr) != 0) return Status::Error(EIO, name_ + ": cannot add an event");
  return w;
}

void EventLoop::Watch::Fire(int /*fd*/, short /*what*/, void* arg) {
  static_cast<Watch*>(arg)->fn_();
}

EventLoop::Watch::~Watch() {
  // event_free deletes the event first, which waits for a callback running
  // on the loop thread (libevent's locking is on).
  if (ev_) event_free(ev_);
}

}  // namespace nbdr
