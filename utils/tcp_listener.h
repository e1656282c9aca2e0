// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// TcpListener: a listening TCP socket, watched on an EventLoop, which
// accepts each connection that arrives and hands it to a callback (which
// owns the descriptor from then on). Used by both of the runner's ports,
// and for the admin unix socket.
//
// Thread-safety: Start and Stop from one thread; the callback runs on the
// loop's thread and must not block.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "utils/event_loop.h"
#include "utils/log_throttle.h"
#include "utils/status.h"
#include "utils/unique_fd.h"

namespace nbdr {

class TcpListener {
 public:
  using AcceptFn = std::function<void(UniqueFd)>;

  // name is used in log lines ("nbd", "rpc"); loop must outlive the
  // listener's Stop.
  TcpListener(std::string name, EventLoop* loop) : name_(std::move(name)), loop_(loop) {}
  ~TcpListener() { Stop(); }
  TcpListener(const TcpListener&) = delete;
  TcpListener& operator=(const TcpListener&) = delete;

  // Binds host:port (port 0: any free port) and starts accepting.
  Status Start(const std::string& host, uint16_t port, AcceptFn on_accept);
  // Starts accepting on a socket already listening (a unix socket: its
  // port is 0), shown as address.
  Status StartOnSocket(UniqueFd listening, std::string address, AcceptFn on_accept);
  // Stops accepting; returns once a callback running meanwhile has
  // returned. Idempotent.
  void Stop();

  uint16_t port() const { return port_; }
  const std::string& address() const { return address_; }

 private:
  // The listening socket is readable: accepts one connection.
  void AcceptOne();
  // accept failed with EMFILE or ENFILE: takes the waiting connection
  // with the spare descriptor, closes it, logs (throttled).
  void RefuseWithoutDescriptors(int err);
  // A connection is refused while fewer than kReservedDescriptors would
  // be left below RLIMIT_NOFILE: opening exports, saving state, logging
  // (and a sanitizer's checks) still find descriptors during a flood.
  static constexpr int kReservedDescriptors = 16;
  static bool NearDescriptorLimit(int fd);
  void RefuseNearLimit(int fd);

  const std::string name_;
  EventLoop* const loop_;
  AcceptFn on_accept_;
  UniqueFd listen_fd_;
  std::unique_ptr<EventLoop::Watch> watch_;
  UniqueFd spare_fd_;  // /dev/null, given up to refuse when descriptors run out
  LogThrottle refusals_;
  uint16_t port_ = 0;
  std::string address_;
};

}  // namespace nbdr
