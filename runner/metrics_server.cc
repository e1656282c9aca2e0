// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// The Prometheus endpoint over libevent's evhttp; see metrics_server.h.
#include "runner/metrics_server.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <pthread.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <system_error>

#include "utils/event_loop.h"
#include "utils/log.h"
#include "utils/net.h"

namespace nbdr {

namespace {

constexpr int kRequestTimeoutS = 10;       // a slow scraper is dropped after this
constexpr size_t kMaxHeadersBytes = 8192;  // a scrape's request is a few lines

}  // namespace

Status MetricsServer::Start(const std::string& host, uint16_t port) {
  EnableLibeventThreads();
  base_ = event_base_new();
  if (!base_) return Status::Error(ENOMEM, "metrics: cannot create the libevent base");
  http_ = evhttp_new(base_);
  if (!http_) {
    Stop();
    return Status::Error(ENOMEM, "metrics: cannot create the HTTP server");
  }
  evhttp_set_allowed_methods(http_, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD);
  evhttp_set_timeout(http_, kRequestTimeoutS);
  evhttp_set_max_headers_size(http_, kMaxHeadersBytes);
  evhttp_set_max_body_size(http_, 0);
  evhttp_set_gencb(http_, &MetricsServer::Handle, this);
  evhttp_bound_socket* bound = evhttp_bind_socket_with_handle(http_, host.c_str(), port);
  if (!bound) {
    int e = errno ? errno : EADDRNOTAVAIL;
    Stop();
    return Status::Error(
        e, "metrics: cannot listen on " + FormatHostPort({host, port}) + ": " + strerror(e));
  }
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (getsockname(evhttp_bound_socket_get_fd(bound), reinterpret_cast<sockaddr*>(&ss), &len) == 0)
    port_ = ntohs(ss.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port
                                           : reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
  try {
    thread_ = std::thread([this] {
      pthread_setname_np(pthread_self(), "metrics-loop");
      event_base_loop(base_, EVLOOP_NO_EXIT_ON_EMPTY);
    });
  } catch (const std::system_error& e) {
    Stop();
    return Status::Error(EAGAIN, std::string("metrics: cannot start its thread: ") + e.what());
  }
  LOG_INFO("metrics", "Prometheus metrics on http://%s/metrics (port %u)",
           FormatHostPort({host, port_}).c_str(), port_);
  if (host != "127.0.0.1" && host != "::1" && host != "localhost")
    LOG_WARN("metrics",
             "the metrics endpoint listens on %s: anyone who reaches it learns every backstore's "
             "name and load, and it has no connection limit of its own; keep it to a trusted "
             "network",
             host.c_str());
  return Status();
}

void MetricsServer::Stop() {
  if (thread_.joinable()) {
    BreakLoopFromInside(base_);
    thread_.join();
  }
  if (http_) evhttp_free(http_);
  http_ = nullptr;
  if (base_) event_base_free(base_);
  base_ = nullptr;
}

void MetricsServer::Handle(evhttp_request* req, void* arg) {
  auto* self = static_cast<MetricsServer*>(arg);
  const evhttp_uri* uri = evhttp_request_get_evhttp_uri(req);
  const char* path = uri ? evhttp_uri_get_path(uri) : nullptr;
  if (!path || strcmp(path, "/metrics") != 0) {
    evhttp_send_error(req, HTTP_NOTFOUND, "only /metrics is served here");
    return;
  }
  const std::string text = self->render_();
  evbuffer* body = evbuffer_new();
  if (!body) {
    evhttp_send_error(req, HTTP_INTERNAL, "out of memory");
    return;
  }
  evbuffer_add(body, text.data(), text.size());
  evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                    "text/plain; version=0.0.4; charset=utf-8");
  evhttp_send_reply(req, HTTP_OK, "OK", body);
  evbuffer_free(body);
}

}  // namespace nbdr
