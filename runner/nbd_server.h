// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// NbdServer: the NBD data port. Accepts TCP connections on its event
// loop, runs the fixed newstyle handshake and the transmission phase for
// each on threads of its own while its client is busy, parks it on the
// loop (no thread) while its client is silent, and hands I/O to the
// export's handler asynchronously.
//
// Thread-safety: Start and Stop are called from the main thread; the
// server's own threads do the rest.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <list>
#include <map>
#include <memory>
#include <string>
#include <thread>

#include "runner/backstore_registry.h"
#include "runner/buffer_pool.h"
#include "runner/memory_budget.h"
#include "runner/stall_watch.h"
#include "runner/tls_credentials.h"
#include "utils/log_throttle.h"
#include "utils/mutex.h"
#include "utils/status.h"
#include "utils/tcp_listener.h"
#include "utils/unique_fd.h"

namespace nbdr {

struct NbdServerOptions {
  std::string host = "";  // "" = all addresses
  uint16_t port = 24111;
  int handshake_timeout_s = 10;       // whole handshake must finish by then
  int idle_timeout_s = 0;             // transmission: 0 = no limit
  int send_timeout_s = 60;            // a client must take each reply within this
  // A reader that finds no request waiting polls the socket this long
  // before it sleeps, if its client's last request came within that time:
  // a sleeping reader costs a wake-up per request. Also bounds each wait
  // of a held small reply for the next request (reply coalescing). 0:
  // always sleep, never coalesce.
  int busy_poll_us = 30;
  int max_connections = 256;          // more are refused at accept
  int max_connections_per_peer = 64;  // from one address; more are refused
  uint32_t max_payload = 64u << 20;   // READ/WRITE length limit (nbdkit's)
  uint64_t max_inflight_bytes = 64u << 20;  // per connection
  // Payload bytes in flight in all connections together
  // (max-buffer-memory; see DefaultBufferMemory).
  uint64_t max_buffer_memory = 256u << 20;
  // Option bytes (headers and data) one handshake may send: bounds the
  // work a client can ask for before the deadline, not the number of
  // options (nbdinfo --list sends LIST, then INFO per export).
  uint64_t max_handshake_bytes = 64u << 20;
  int keepalive_idle_s = 60;
  // A handshake whose client sends nothing for this long between options,
  // and a transmission connection with nothing in flight whose client
  // sends no request for idle_park_ms, parks: its threads end and it waits
  // on the event loop until the client sends more (or its deadline).
  int handshake_park_ms = 100;
  int idle_park_ms = 1000;
  // Threads reading each connection in turn; with handlers that complete
  // inline this is how many requests of one connection run in parallel.
  int readers_per_connection = 2;
  // TLS credentials and whether TLS is offered or required; null or mode
  // off: NBD_OPT_STARTTLS is refused.
  std::shared_ptr<const TlsCredentials> tls;
};

class NbdConnection;

class NbdServer {
 public:
  NbdServer(NbdServerOptions options, BackstoreRegistry* registry);
  ~NbdServer();
  NbdServer(const NbdServer&) = delete;
  NbdServer& operator=(const NbdServer&) = delete;

  // Binds and starts accepting.
  Status Start();
  uint16_t port() const { return listener_.port(); }
  const std::string& address() const { return listener_.address(); }
  // Stops accepting, lets every connection finish its in-flight requests,
  // and waits for all of them to end.
  void Stop();

  const NbdServerOptions& options() const { return options_; }
  // Shared by every connection: payload buffers (at most kCachedBuffers
  // kept idle in all) and the budget of payload bytes in flight.
  BufferPool* buffers() { return &buffers_; }
  MemoryBudget* memory() { return &memory_; }
  static constexpr uint64_t kCachedBuffers = 64u << 20;
  // A parked connection that could not get a thread tries again after this.
  static constexpr std::chrono::milliseconds kRetryDispatch{100};
  // The TLS credentials a handshake starting now uses: options().tls until
  // SetTls replaces them.
  std::shared_ptr<const TlsCredentials> tls() const EXCLUDES(tls_mu_);
  // SIGHUP: credentials read again, for handshakes from now on (whether
  // TLS is off, on or required stays as options().tls says). Connections
  // already in TLS keep the ones they started with.
  void SetTls(std::shared_ptr<const TlsCredentials> tls) EXCLUDES(tls_mu_);
  BackstoreRegistry* registry() const { return registry_; }
  const StallWatch& stall_watch() const { return stall_watch_; }
  bool stopping() const { return stopping_; }
  size_t connection_count() const EXCLUDES(mu_);

 private:
  void Accept(UniqueFd fd);
  // Gives conn a thread to run on (a new connection, or a parked one
  // whose client sent more or whose deadline came). Without a thread, a
  // new connection is refused and a parked one tried again shortly.
  void Dispatch(std::shared_ptr<NbdConnection> conn);
  void RunConnection(std::shared_ptr<NbdConnection> conn);
  // Waits on the event loop for conn's client (or its park deadline);
  // false when it cannot (the connection then ends).
  bool Park(const std::shared_ptr<NbdConnection>& conn);
  // The connection ends: it leaves connections_ and its peer's count.
  void Forget(const std::shared_ptr<NbdConnection>& conn) REQUIRES(mu_);
  void End(std::shared_ptr<NbdConnection> conn) EXCLUDES(mu_);
  // Logs a refused connection (at most one line a second).
  void Refuse(const std::string& who, const std::string& why);

  const NbdServerOptions options_;
  BackstoreRegistry* const registry_;
  BufferPool buffers_{kCachedBuffers};
  MemoryBudget memory_{options_.max_buffer_memory};
  // Accepts connections, and holds those parked between handshake options
  // or between requests until their client sends more.
  EventLoop loop_{"nbd-loop"};
  TcpListener listener_{"nbd", &loop_};
  // Fencing: a process stopped for longer than this (see stall_watch.h).
  static constexpr std::chrono::seconds kFenceStall{3};
  StallWatch stall_watch_{&loop_, kFenceStall};
  std::atomic<bool> stopping_{false};
  std::atomic<uint64_t> next_id_{1};
  LogThrottle refusals_;

  mutable Mutex tls_mu_;
  std::shared_ptr<const TlsCredentials> tls_ GUARDED_BY(tls_mu_);

  mutable Mutex mu_;
  std::condition_variable all_done_;
  std::list<std::shared_ptr<NbdConnection>> connections_ GUARDED_BY(mu_);
  std::map<std::string, int> per_peer_ GUARDED_BY(mu_);  // connections by peer address
};

}  // namespace nbdr
