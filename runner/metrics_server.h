// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// MetricsServer: the Prometheus endpoint (metrics-host, metrics-port):
// GET /metrics answers the runner's metrics (metrics_text.h), anything
// else 404. It runs libevent's HTTP server on a loop thread of its own,
// so a scrape never waits behind NBD or control work, nor they behind it.
// Off unless metrics-port is set; loopback unless metrics-host says more.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <thread>

#include "utils/status.h"

struct event_base;
struct evhttp;
struct evhttp_request;

namespace nbdr {

class MetricsServer {
 public:
  // render: the metrics text, called on the server's thread per scrape.
  explicit MetricsServer(std::function<std::string()> render) : render_(std::move(render)) {}
  ~MetricsServer() { Stop(); }
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  // Listens on host:port (port 0: one the system picks) and serves.
  Status Start(const std::string& host, uint16_t port);
  // The port it listens on, once started.
  uint16_t port() const { return port_; }
  void Stop();

 private:
  static void Handle(evhttp_request* req, void* self);

  std::function<std::string()> render_;
  event_base* base_ = nullptr;
  evhttp* http_ = nullptr;
  uint16_t port_ = 0;
  std::thread thread_;
};

}  // namespace nbdr
