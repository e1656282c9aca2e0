// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// The connection's byte stream: TCP, plain or TLS; see transport.h.
#include "runner/transport.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>

#include <cerrno>

#include "runner/tls_session.h"
#include "utils/net.h"

namespace nbdr {

Status Transport::RecvExact(void* buf, size_t len,
                            std::chrono::steady_clock::time_point deadline) {
  auto* out = static_cast<uint8_t*>(buf);
  while (len > 0) {
    auto left = std::chrono::duration_cast<std::chrono::microseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return Status::Error(ETIMEDOUT, "handshake deadline passed");
    SetRecvTimeout(left);
    ssize_t n = Recv(out, len, Wait::kBlock);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) continue;
      return PosixError("recv");
    }
    if (n == 0) return Status::Error(ECONNRESET, "connection closed by client");
    out += n;
    len -= static_cast<size_t>(n);
  }
  return Status();
}

Status Transport::SendAll(iovec* iov, int n, std::chrono::steady_clock::time_point deadline) {
  while (n > 0) {
    auto left = std::chrono::duration_cast<std::chrono::microseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return Status::Error(ETIMEDOUT, "handshake deadline passed");
    SetSendTimeout(left);
    ssize_t w = Send(iov, n, Wait::kBlock);
    if (w < 0) {
      if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) continue;
      return PosixError("send");
    }
    size_t done = static_cast<size_t>(w);
    while (n > 0 && done >= iov->iov_len) {
      done -= iov->iov_len;
      iov++;
      n--;
    }
    if (n > 0) {
      iov->iov_base = static_cast<uint8_t*>(iov->iov_base) + done;
      iov->iov_len -= done;
    }
  }
  return Status();
}

Status Transport::SendAll(const void* buf, size_t len,
                          std::chrono::steady_clock::time_point deadline) {
  iovec iov{const_cast<void*>(buf), len};
  return SendAll(&iov, 1, deadline);
}

TcpTransport::TcpTransport(UniqueFd fd, int keepalive_idle_s)
    : fd_(std::move(fd)), peer_(PeerAddress(fd_.get())) {
  SetNoDelay(fd_.get());
  SetKeepalive(fd_.get(), keepalive_idle_s, kKeepaliveIntervalS, kKeepaliveProbes);
}

TcpTransport::~TcpTransport() = default;

ssize_t TcpTransport::Recv(void* dst, size_t cap, Wait wait) {
  if (tls_) return tls_->Recv(dst, cap, wait == Wait::kNoWait);
  return recv(fd_.get(), dst, cap, wait == Wait::kNoWait ? MSG_DONTWAIT : 0);
}

ssize_t TcpTransport::Send(const iovec* iov, int n, Wait wait) {
  if (tls_) return tls_->Send(iov, n, wait == Wait::kNoWait);
  msghdr msg{};
  msg.msg_iov = const_cast<iovec*>(iov);
  msg.msg_iovlen = static_cast<size_t>(n);
  return sendmsg(fd_.get(), &msg, MSG_NOSIGNAL | (wait == Wait::kNoWait ? MSG_DONTWAIT : 0));
}

bool TcpTransport::WaitReadable(std::chrono::milliseconds t) {
  if (tls_ && tls_->Pending()) return true;
  pollfd p{fd_.get(), POLLIN, 0};
  int r;
  do r = poll(&p, 1, static_cast<int>(t.count()));
  while (r < 0 && errno == EINTR);
  return r != 0;  // an error: the next Recv reports it
}

bool TcpTransport::PeerShutDown() const {
  pollfd p{fd_.get(), POLLRDHUP, 0};
  int r;
  do r = poll(&p, 1, 0);
  while (r < 0 && errno == EINTR);
  return r > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0;
}

void TcpTransport::SetRecvTimeout(std::chrono::microseconds t) {
  nbdr::SetRecvTimeout(fd_.get(), t);
  if (tls_) tls_->SetRecvTimeout(t);
}

void TcpTransport::SetSendTimeout(std::chrono::microseconds t) {
  nbdr::SetSendTimeout(fd_.get(), t);
}

void TcpTransport::AckPromptly() {
  int one = 1;
  setsockopt(fd_.get(), IPPROTO_TCP, TCP_QUICKACK, &one, sizeof one);
}

void TcpTransport::ShutdownRead() { shutdown(fd_.get(), SHUT_RD); }

void TcpTransport::ShutdownBoth() { shutdown(fd_.get(), SHUT_RDWR); }

Status TcpTransport::StartTls(std::shared_ptr<const TlsCredentials> creds,
                              std::chrono::steady_clock::time_point deadline,
                              std::chrono::milliseconds park_wait) {
  if (tls_ || handshaking_) return Status::Error(EPROTO, "TLS already started");
  auto session = TlsSession::Begin(fd_.get(), std::move(creds));
  if (!session) return session.status();
  handshaking_ = std::move(*session);
  return ContinueTls(deadline, park_wait);
}

Status TcpTransport::ContinueTls(std::chrono::steady_clock::time_point deadline,
                                 std::chrono::milliseconds park_wait) {
  if (!handshaking_) return Status::Error(EPROTO, "no TLS handshake in progress");
  Status s = handshaking_->ContinueHandshake(deadline, park_wait);
  if (s.code() == EAGAIN) return s;
  if (s.ok()) tls_ = std::move(handshaking_);
  handshaking_.reset();
  return s;
}

std::string TcpTransport::tls_identity() const { return tls_ ? tls_->identity() : ""; }

std::string TcpTransport::tls_description() const { return tls_ ? tls_->description() : ""; }

}  // namespace nbdr
