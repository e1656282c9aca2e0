// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// Accept loop; see tcp_listener.h.
#include "utils/tcp_listener.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "utils/log.h"
#include "utils/net.h"

namespace nbdr {

Status TcpListener::Start(const std::string& host, uint16_t port, AcceptFn on_accept) {
  auto fd = ListenTcp(host, port);
  if (!fd) return fd.status();
  const std::string address = LocalAddress(fd->get());
  return StartOnSocket(std::move(*fd), address, std::move(on_accept));
}

Status TcpListener::StartOnSocket(UniqueFd listening, std::string address, AcceptFn on_accept) {
  listen_fd_ = std::move(listening);
  // Nonblocking: a connection the client reset between the wake-up and
  // accept must not stall the loop.
  int fl = fcntl(listen_fd_.get(), F_GETFL);
  if (fl < 0 || fcntl(listen_fd_.get(), F_SETFL, fl | O_NONBLOCK) < 0) return PosixError("fcntl");
  port_ = LocalPort(listen_fd_.get());
  address_ = std::move(address);
  on_accept_ = std::move(on_accept);
  spare_fd_.reset(open("/dev/null", O_RDONLY | O_CLOEXEC));
  auto watch = loop_->WatchReadable(listen_fd_.get(), [this] { AcceptOne(); });
  if (!watch) return watch.status();
  watch_ = std::move(*watch);
  return Status();
}

void TcpListener::AcceptOne() {
  // accept4 does not inherit O_NONBLOCK: the connection's threads block.
  int cfd = accept4(listen_fd_.get(), nullptr, nullptr, SOCK_CLOEXEC);
  if (cfd < 0) {
    if (errno == EINTR || errno == EAGAIN || errno == ECONNABORTED) return;
    if (errno == EMFILE || errno == ENFILE) {
      RefuseWithoutDescriptors(errno);
      return;
    }
    LOG_ERROR(name_, "accept: %s", strerror(errno));
    poll(nullptr, 0, 100);  // ENOBUFS and the like: do not spin
    return;
  }
  if (NearDescriptorLimit(cfd)) {
    RefuseNearLimit(cfd);
    return;
  }
  on_accept_(UniqueFd(cfd));
}

bool TcpListener::NearDescriptorLimit(int fd) {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY) return false;
  return static_cast<rlim_t>(fd) + kReservedDescriptors >= rl.rlim_cur;
}

void TcpListener::RefuseNearLimit(int fd) {
  std::string peer = PeerAddress(fd);
  close(fd);
  rlimit rl{};
  getrlimit(RLIMIT_NOFILE, &rl);
  uint64_t held_back = 0;
  if (refusals_.Allow(&held_back))
    LOG_WARN(name_, "refusing %s: out of file descriptors (descriptor %d of %llu; the last %d "
             "are kept for serving)%s", peer.c_str(), fd,
             static_cast<unsigned long long>(rl.rlim_cur), kReservedDescriptors,
             LogThrottle::HeldBackNote(held_back).c_str());
}

void TcpListener::RefuseWithoutDescriptors(int err) {
  // The spare descriptor makes room to take the connection off the queue
  // and close it: the client learns at once, and poll does not spin on a
  // connection that can never be accepted.
  spare_fd_.reset();
  int cfd = accept4(listen_fd_.get(), nullptr, nullptr, SOCK_CLOEXEC);
  std::string peer = cfd >= 0 ? PeerAddress(cfd) : "a client";
  if (cfd >= 0) close(cfd);
  spare_fd_.reset(open("/dev/null", O_RDONLY | O_CLOEXEC));
  uint64_t held_back = 0;
  if (refusals_.Allow(&held_back))
    LOG_WARN(name_, "refusing %s: out of file descriptors (%s)%s", peer.c_str(), strerror(err),
             LogThrottle::HeldBackNote(held_back).c_str());
  if (!spare_fd_.valid()) poll(nullptr, 0, 100);  // none freed yet: wait a little
}

void TcpListener::Stop() {
  watch_.reset();
  listen_fd_.reset();
}

}  // namespace nbdr
