// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// TcpListener: a listening TCP socket and the thread that accepts on it.
// Each accepted connection is handed to a callback (which owns the
// descriptor from then on). Stop() wakes the accept thread through an
// eventfd and joins it. Used by both of the runner's ports, and for the
// admin unix socket.
//
// Thread-safety: Start and Stop from one thread; the callback runs on the
// accept thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <thread>

#include "utils/log_throttle.h"
#include "utils/status.h"
#include "utils/unique_fd.h"

namespace nbdr {

class TcpListener {
 public:
  using AcceptFn = std::function<void(UniqueFd)>;

  // name is used in log lines ("nbd", "rpc").
  explicit TcpListener(std::string name) : name_(std::move(name)) {}
  ~TcpListener() { Stop(); }
  TcpListener(const TcpListener&) = delete;
  TcpListener& operator=(const TcpListener&) = delete;

  // Binds host:port (port 0: any free port) and starts accepting.
  Status Start(const std::string& host, uint16_t port, AcceptFn on_accept);
  // Starts accepting on a socket already listening (a unix socket: its
  // port is 0), shown as address.
  Status StartOnSocket(UniqueFd listening, std::string address, AcceptFn on_accept);
  // Stops accepting; returns once the accept thread has ended. Idempotent.
  void Stop();

  uint16_t port() const { return port_; }
  const std::string& address() const { return address_; }

 private:
  void Loop();
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
  AcceptFn on_accept_;
  UniqueFd listen_fd_;
  UniqueFd wake_fd_;
  UniqueFd spare_fd_;  // /dev/null, given up to refuse when descriptors run out
  LogThrottle refusals_;
  uint16_t port_ = 0;
  std::string address_;
  std::thread thread_;
  std::atomic<bool> stopping_{false};
};

}  // namespace nbdr
