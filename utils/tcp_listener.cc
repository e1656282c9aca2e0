// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// Accept loop; see tcp_listener.h.
#include "utils/tcp_listener.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

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
  wake_fd_.reset(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!wake_fd_.valid()) return PosixError("eventfd");
  port_ = LocalPort(listen_fd_.get());
  address_ = std::move(address);
  on_accept_ = std::move(on_accept);
  thread_ = std::thread([this] { Loop(); });
  return Status();
}

void TcpListener::Loop() {
  for (;;) {
    pollfd pfds[2] = {{listen_fd_.get(), POLLIN, 0}, {wake_fd_.get(), POLLIN, 0}};
    if (poll(pfds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      LOG_ERROR(name_, "poll: %s", strerror(errno));
      return;
    }
    if (pfds[1].revents || stopping_) return;
    if (!(pfds[0].revents & POLLIN)) continue;
    int cfd = accept4(listen_fd_.get(), nullptr, nullptr, SOCK_CLOEXEC);
    if (cfd < 0) {
      if (errno == EINTR || errno == EAGAIN || errno == ECONNABORTED) continue;
      LOG_ERROR(name_, "accept: %s", strerror(errno));
      if (errno == EMFILE || errno == ENFILE) poll(nullptr, 0, 100);  // let fds free up
      continue;
    }
    on_accept_(UniqueFd(cfd));
  }
}

void TcpListener::Stop() {
  if (!thread_.joinable()) return;
  stopping_ = true;
  uint64_t one = 1;
  // An eventfd write only fails on overflow; the flag alone stops the loop then.
  (void)!write(wake_fd_.get(), &one, sizeof one);
  thread_.join();
  listen_fd_.reset();
}

}  // namespace nbdr
