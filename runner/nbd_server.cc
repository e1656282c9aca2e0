// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// The NBD data port: accepting connections; see nbd_server.h.
#include "runner/nbd_server.h"


#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <system_error>
#include <thread>

#include "runner/nbd_connection.h"
#include "runner/transport.h"
#include "utils/log.h"
#include "utils/net.h"

namespace nbdr {

NbdServer::NbdServer(NbdServerOptions options, BackstoreRegistry* registry)
    : options_(std::move(options)), registry_(registry), tls_(options_.tls) {}

std::shared_ptr<const TlsCredentials> NbdServer::tls() const {
  MutexLock l(&tls_mu_);
  return tls_;
}

void NbdServer::SetTls(std::shared_ptr<const TlsCredentials> tls) {
  MutexLock l(&tls_mu_);
  tls_ = std::move(tls);
}

NbdServer::~NbdServer() { Stop(); }

Status NbdServer::Start() {
  if (Status s = loop_.Start(); !s.ok()) return s.WithContext("NBD port");
  if (Status s = stall_watch_.Start(); !s.ok()) return s.WithContext("NBD port");
  Status s = listener_.Start(options_.host, options_.port,
                             [this](UniqueFd fd) { Accept(std::move(fd)); });
  return s.WithContext("NBD port");
}

size_t NbdServer::connection_count() const {
  MutexLock l(&mu_);
  return connections_.size();
}

void NbdServer::Accept(UniqueFd fd) {
  std::shared_ptr<NbdConnection> conn;
  std::string peer_host = PeerHost(fd.get());
  {
    MutexLock l(&mu_);
    if (connections_.size() >= static_cast<size_t>(options_.max_connections)) {
      Refuse(PeerAddress(fd.get()), "already " + std::to_string(connections_.size()) +
                                        " connections (max-connections)");
      return;  // fd closes
    }
    int& from_peer = per_peer_[peer_host];
    if (from_peer >= options_.max_connections_per_peer) {
      Refuse(PeerAddress(fd.get()), "already " + std::to_string(from_peer) +
                                        " connections from " + peer_host +
                                        " (max-connections-per-peer)");
      return;
    }
    from_peer++;
    conn = std::make_shared<NbdConnection>(
        std::make_unique<TcpTransport>(std::move(fd), options_.keepalive_idle_s), next_id_++, this,
        std::move(peer_host));
    connections_.push_back(conn);
  }
  Dispatch(std::move(conn));
}

void NbdServer::Dispatch(std::shared_ptr<NbdConnection> conn) {
  try {
    std::thread([this, c = conn]() mutable { RunConnection(std::move(c)); }).detach();
    return;
  } catch (const std::system_error& e) {
    // No thread to serve it (a pids limit, TasksMax): a new connection is
    // refused, the others go on; a parked one waits a little and tries
    // again (its client, a kernel mapping perhaps, did nothing wrong).
    if (conn->started() && !stopping_) {
      Refuse(conn->name(), std::string("cannot resume it now: ") + e.what() + "; retrying");
      if (loop_.After(kRetryDispatch, [this, conn] { Dispatch(conn); }).ok()) return;
    } else {
      Refuse(conn->name(), std::string("cannot start its thread: ") + e.what());
    }
  }
  End(std::move(conn));  // closes its socket
}

void NbdServer::RunConnection(std::shared_ptr<NbdConnection> conn) {
  if (conn->Serve() == NbdConnection::Outcome::kParked && Park(conn)) return;
  End(std::move(conn));
}

bool NbdServer::Park(const std::shared_ptr<NbdConnection>& conn) {
  using namespace std::chrono;
  const auto deadline = conn->park_deadline();
  milliseconds timeout(0);  // none
  if (deadline != steady_clock::time_point::max())
    timeout = std::max(milliseconds(1), ceil<milliseconds>(deadline - steady_clock::now()));
  Status s = loop_.WhenReadable(conn->event_fd(), timeout, [this, conn](bool) { Dispatch(conn); });
  if (!s.ok()) LOG_WARN(conn->name(), "cannot wait for the client: %s; closing", s.message().c_str());
  return s.ok();
}

void NbdServer::End(std::shared_ptr<NbdConnection> conn) {
  MutexLock l(&mu_);
  Forget(conn);
  conn.reset();  // destroyed under mu_ so Stop() never outlives it
  all_done_.notify_all();
}

void NbdServer::Forget(const std::shared_ptr<NbdConnection>& conn) {
  connections_.remove(conn);
  if (--per_peer_[conn->peer_host()] <= 0) per_peer_.erase(conn->peer_host());
}

void NbdServer::Refuse(const std::string& who, const std::string& why) {
  uint64_t held_back = 0;
  if (!refusals_.Allow(&held_back)) return;
  LOG_WARN("nbd", "refusing %s: %s%s", who.c_str(), why.c_str(),
           LogThrottle::HeldBackNote(held_back).c_str());
}

void NbdServer::Stop() {
  stopping_ = true;
  listener_.Stop();
  MutexLock l(&mu_);
  for (auto& c : connections_) c->Shutdown();
  if (!connections_.empty())
    LOG_INFO("nbd", "waiting for %zu connection(s) to finish in-flight requests",
             connections_.size());
  l.Wait(&all_done_, [&] { return connections_.empty(); });
  l.Unlock();
  loop_.Stop();
}

}  // namespace nbdr
