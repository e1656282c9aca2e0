// The NBD data port: accepting connections; see nbd_server.h.
#include "runner/nbd_server.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include "runner/nbd_connection.h"
#include "utils/log.h"
#include "utils/net.h"

namespace nbdr {

NbdServer::NbdServer(NbdServerOptions options, BackstoreRegistry* registry)
    : options_(std::move(options)), registry_(registry) {}

NbdServer::~NbdServer() { Stop(); }

Status NbdServer::Start() {
  auto fd = ListenTcp(options_.host, options_.port);
  if (!fd) return fd.status().WithContext("NBD port");
  listen_fd_ = std::move(*fd);
  wake_fd_.reset(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!wake_fd_.valid()) return PosixError("eventfd");
  port_ = LocalPort(listen_fd_.get());
  address_ = LocalAddress(listen_fd_.get());
  acceptor_ = std::thread([this] { AcceptLoop(); });
  return Status();
}

size_t NbdServer::connection_count() const {
  MutexLock l(&mu_);
  return connections_.size();
}

void NbdServer::AcceptLoop() {
  for (;;) {
    pollfd pfds[2] = {{listen_fd_.get(), POLLIN, 0}, {wake_fd_.get(), POLLIN, 0}};
    int rc = poll(pfds, 2, -1);
    if (rc < 0) {
      if (errno == EINTR) continue;
      LOG_ERROR("nbd", "poll: %s", strerror(errno));
      return;
    }
    if (pfds[1].revents || stopping_) return;
    if (!(pfds[0].revents & POLLIN)) continue;
    int cfd = accept4(listen_fd_.get(), nullptr, nullptr, SOCK_CLOEXEC);
    if (cfd < 0) {
      if (errno == EINTR || errno == EAGAIN || errno == ECONNABORTED) continue;
      LOG_ERROR("nbd", "accept: %s", strerror(errno));
      if (errno == EMFILE || errno == ENFILE) poll(nullptr, 0, 100);  // let fds free up
      continue;
    }
    UniqueFd fd(cfd);
    std::shared_ptr<NbdConnection> conn;
    {
      MutexLock l(&mu_);
      if (connections_.size() >= static_cast<size_t>(options_.max_connections)) {
        LOG_WARN("nbd", "refusing %s: already %zu connections (max-connections)",
                 PeerAddress(cfd).c_str(), connections_.size());
        continue;  // fd closes
      }
      conn = std::make_shared<NbdConnection>(std::move(fd), next_id_++, this);
      connections_.push_back(conn);
    }
    std::thread([this, c = std::move(conn)]() mutable { RunConnection(std::move(c)); }).detach();
  }
}

void NbdServer::RunConnection(std::shared_ptr<NbdConnection> conn) {
  conn->Run();
  MutexLock l(&mu_);
  connections_.remove(conn);
  conn.reset();  // destroyed under mu_ so Stop() never outlives it
  all_done_.notify_all();
}

void NbdServer::Stop() {
  if (!acceptor_.joinable()) return;
  stopping_ = true;
  uint64_t one = 1;
  if (write(wake_fd_.get(), &one, sizeof one) < 0) {
    // eventfd writes only fail on overflow; the flag alone stops the loop.
  }
  acceptor_.join();
  listen_fd_.reset();
  MutexLock l(&mu_);
  for (auto& c : connections_) c->Shutdown();
  if (!connections_.empty())
    LOG_INFO("nbd", "waiting for %zu connection(s) to finish in-flight requests",
             connections_.size());
  l.Wait(&all_done_, [&] { return connections_.empty(); });
}

}  // namespace nbdr
