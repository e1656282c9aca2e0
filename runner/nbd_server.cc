// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// The NBD data port: accepting connections; see nbd_server.h.
#include "runner/nbd_server.h"


#include <cerrno>
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
  const std::string peer_host = PeerHost(fd.get());
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
        std::make_unique<TcpTransport>(std::move(fd), options_.keepalive_idle_s), next_id_++, this);
    connections_.push_back(conn);
  }
  try {
    std::thread([this, c = conn, peer_host]() mutable {
      RunConnection(std::move(c), peer_host);
    }).detach();
  } catch (const std::system_error& e) {
    // No thread to serve it (a pids limit, TasksMax): this connection is
    // refused, the others go on.
    Refuse(conn->name(), std::string("cannot start its thread: ") + e.what());
    MutexLock l(&mu_);
    Forget(conn, peer_host);
    conn.reset();  // closes its socket
    all_done_.notify_all();
  }
}

void NbdServer::Forget(const std::shared_ptr<NbdConnection>& conn, const std::string& peer_host) {
  connections_.remove(conn);
  if (--per_peer_[peer_host] <= 0) per_peer_.erase(peer_host);
}

void NbdServer::Refuse(const std::string& who, const std::string& why) {
  uint64_t held_back = 0;
  if (!refusals_.Allow(&held_back)) return;
  LOG_WARN("nbd", "refusing %s: %s%s", who.c_str(), why.c_str(),
           LogThrottle::HeldBackNote(held_back).c_str());
}

void NbdServer::RunConnection(std::shared_ptr<NbdConnection> conn, const std::string& peer_host) {
  conn->Run();
  MutexLock l(&mu_);
  Forget(conn, peer_host);
  conn.reset();  // destroyed under mu_ so Stop() never outlives it
  all_done_.notify_all();
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
