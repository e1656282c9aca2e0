// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// The control port's per-connection I/O (see rpc_server.h): call records
// read exactly (RFC 5531 record marking), so that a connection between
// calls has nothing of the next one buffered and can park; replies
// encoded into an xdrrec stream; both through TLS once the client
// started it.
#include <poll.h>
#include <rpc/rpc.h>
#include <sys/socket.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include "runner/rpc_server.h"
#include "utils/log.h"
#include "utils/net.h"

namespace nbdr {

void RpcServer::OpenReplyStream(Connection* c) {
  c->out = std::make_unique<ReplyStream>();
  // Encode only: calls are read by ReadCall, never through this stream.
  xdrrec_create(&c->out->xdrs, kRecordBufferSize, kRecordBufferSize, c, nullptr, WriteRecord);
  c->out->xdrs.x_op = XDR_ENCODE;
}

int RpcServer::WriteRecord(void* handle, void* buf, int len) {
  auto* c = static_cast<Connection*>(handle);
  if (!c->tls) return WriteAll(c->fd, buf, static_cast<size_t>(len)).ok() ? len : -1;
  size_t done = 0;
  while (done < static_cast<size_t>(len)) {
    iovec iov{static_cast<char*>(buf) + done, static_cast<size_t>(len) - done};
    ssize_t n = c->tls->Send(&iov, 1, false);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return -1;
    done += static_cast<size_t>(n);
  }
  return len;
}

bool RpcServer::CallBegun(Connection* c) {
  if (c->tls && c->tls->Pending()) return true;
  Clock::time_point since;
  {
    MutexLock l(&c->server->mu_);
    since = c->since;
  }
  const auto left = since + kIdleTimeout - Clock::now();
  if (left <= Clock::duration::zero()) return true;  // RecvSome ends it
  const auto wait = std::min(kParkAfter, std::chrono::ceil<std::chrono::milliseconds>(left));
  pollfd p{c->fd, POLLIN, 0};
  int r;
  do r = poll(&p, 1, static_cast<int>(wait.count()));
  while (r < 0 && errno == EINTR);
  return r != 0;
}

// Each wait is bounded by the idle deadline between calls and by what is
// left of the call's deadline within one.
ssize_t RpcServer::RecvSome(Connection* c, void* buf, size_t len) {
  for (;;) {
    bool between_calls;
    Clock::time_point since;
    {
      MutexLock l(&c->server->mu_);
      between_calls = c->between_calls;
      since = c->since;
    }
    auto wait = std::chrono::duration_cast<std::chrono::microseconds>(
        since + (between_calls ? kIdleTimeout : kCallReceiveTimeout) - Clock::now());
    if (wait.count() <= 0) {
      if (between_calls) {
        LOG_DEBUG("rpc", "%s: no call for %lld s; closing", c->peer.c_str(),
                  static_cast<long long>(kIdleTimeout.count()));
      } else {
        LOG_WARN("rpc", "%s: call not received within %lld s; closing", c->peer.c_str(),
                 static_cast<long long>(kCallReceiveTimeout.count()));
      }
      return -1;
    }
    ssize_t n;
    if (c->tls) {
      c->tls->SetRecvTimeout(wait);
      n = c->tls->Recv(buf, len, false);
    } else {
      SetRecvTimeout(c->fd, wait);
      n = recv(c->fd, buf, len, 0);
    }
    if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)) continue;
    if (n <= 0) return -1;
    if (between_calls && !c->server->StartCall(c)) return -1;
    return n;
  }
}

bool RpcServer::RecvForCall(Connection* c, void* buf, size_t len) {
  auto* p = static_cast<char*>(buf);
  while (len > 0) {
    ssize_t n = RecvSome(c, p, len);
    if (n <= 0) return false;
    p += n;
    len -= static_cast<size_t>(n);
  }
  return true;
}

bool RpcServer::ReadCall(Connection* c, std::vector<char>* record) {
  record->clear();
  for (;;) {
    unsigned char mark[4];
    if (!RecvForCall(c, mark, sizeof mark)) return false;
    const uint32_t word = (uint32_t{mark[0]} << 24) | (uint32_t{mark[1]} << 16) |
                          (uint32_t{mark[2]} << 8) | uint32_t{mark[3]};
    const bool last = word & 0x80000000u;
    const uint32_t length = word & 0x7fffffffu;
    if (length > kMaxCallBytes - record->size()) {
      LOG_WARN("rpc", "%s: a call of more than %u bytes; closing", c->peer.c_str(),
               kMaxCallBytes);
      return false;
    }
    const size_t old = record->size();
    record->resize(old + length);
    if (length > 0 && !RecvForCall(c, record->data() + old, length)) return false;
    if (last) return true;
  }
}

}  // namespace nbdr
