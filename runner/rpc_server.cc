// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// The control port: ONC RPC over TCP; see rpc_server.h.
#include "runner/rpc_server.h"

#include <rpc/rpc.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <algorithm>
#include <chrono>
#include <cerrno>
#include <cstring>
#include <memory>
#include <system_error>

#include "rpc/rpc_table.h"
#include "runner/tls_session.h"
#include "utils/log.h"
#include "utils/net.h"

namespace nbdr {

namespace {

// A connection waiting for its next call is closed after kIdleTimeout, or
// sooner when every slot is taken and a new client needs one. A call, once
// its first byte is in, must arrive whole within kCallReceiveTimeout, so a
// client sending a byte now and then cannot hold a slot.
constexpr std::chrono::seconds kIdleTimeout{60};
constexpr std::chrono::seconds kCallReceiveTimeout{10};
// nbd-cli writes a call at once: one still arriving after this may lose
// its slot to a new caller when every slot is taken.
constexpr std::chrono::seconds kSlowCall{2};
// Control connections one client address may hold, and the admin
// socket's own slots.
constexpr int kMaxConnectionsPerPeer = 16;
constexpr int kLocalSlots = 16;
constexpr u_int kRecordBufferSize = 64 * 1024;

// RFC 9289: the client's credential flavor asking for TLS, and the
// verifier of the server's answer that it may start.
constexpr int32_t kAuthTls = 7;
constexpr char kStartTlsVerifier[] = "STARTTLS";
// How long a client has for the TLS handshake on the control port.
constexpr std::chrono::seconds kTlsHandshakeTimeout{10};

}  // namespace

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

// xdrrec's read callback on a blocking socket: each wait is bounded by the
// idle timeout between calls and by what is left of the call's deadline
// within one.
int RpcServer::ReadRecord(void* handle, void* buf, int len) {
  auto* c = static_cast<Connection*>(handle);
  for (;;) {
    bool between_calls;
    Clock::time_point since;
    {
      MutexLock l(&c->server->mu_);
      between_calls = c->between_calls;
      since = c->since;
    }
    auto wait = std::chrono::duration_cast<std::chrono::microseconds>(
        between_calls ? std::chrono::microseconds(kIdleTimeout)
                      : since + kCallReceiveTimeout - Clock::now());
    if (wait.count() <= 0) {
      LOG_WARN("rpc", "%s: call not received within %lld s; closing", c->peer.c_str(),
               static_cast<long long>(kCallReceiveTimeout.count()));
      return -1;
    }
    ssize_t n;
    if (c->tls) {
      c->tls->SetRecvTimeout(wait);
      n = c->tls->Recv(buf, static_cast<size_t>(len), false);
    } else {
      SetRecvTimeout(c->fd, wait);
      n = recv(c->fd, buf, static_cast<size_t>(len), 0);
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) && !between_calls) continue;
    if (n <= 0) return -1;
    if (between_calls && !c->server->StartCall(c)) return -1;
    return static_cast<int>(n);
  }
}

bool RpcServer::StartCall(Connection* c) {
  MutexLock l(&mu_);
  if (c->evicted) return false;
  if (c->between_calls) {
    c->between_calls = false;
    c->since = Clock::now();
  }
  return true;
}

void RpcServer::AwaitCall(Connection* c) {
  MutexLock l(&mu_);
  c->between_calls = true;
  c->in_service = false;
  c->since = Clock::now();
}

RpcServer::RpcServer(std::string host, uint16_t port, ControlService* service, int max_connections,
                     TlsSource tls_source)
    : host_(std::move(host)),
      requested_port_(port),
      service_(service),
      max_connections_(max_connections),
      tls_source_(std::move(tls_source)) {}

RpcServer::~RpcServer() { Stop(); }

Status RpcServer::Start() {
  if (Status s = loop_.Start(); !s.ok()) return s.WithContext("RPC port");
  Status s = listener_.Start(host_, requested_port_,
                             [this](UniqueFd fd) { Accept(std::move(fd), false); });
  return s.WithContext("RPC port");
}

Status RpcServer::StartLocal(const std::string& path) {
  auto fd = ListenUnix(path);
  if (!fd) return fd.status().WithContext("admin socket");
  if (Status s = loop_.Start(); !s.ok()) return s.WithContext("admin socket");
  local_path_ = path;
  return local_listener_.StartOnSocket(std::move(*fd), path, [this](UniqueFd f) {
    Accept(std::move(f), true);
  });
}

namespace {

// Who is calling: a TCP peer's address, or a local caller's pid and uid.
RpcCaller CallerOf(int fd, bool local) {
  RpcCaller caller;
  if (!local) {
    caller.peer = PeerAddress(fd);
    caller.host = PeerHost(fd);
    return caller;
  }
  ucred cred{};
  socklen_t len = sizeof cred;
  caller.local = true;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
    caller.peer = "local (credentials unknown)";
    return caller;  // uid stays -1: refused
  }
  caller.uid = static_cast<long>(cred.uid);
  caller.peer = "local pid " + std::to_string(cred.pid);
  caller.identity = "uid:" + std::to_string(cred.uid);
  return caller;
}

}  // namespace

void RpcServer::Accept(UniqueFd fd, bool local) {
  Connection* c;
  const std::string peer = PeerAddress(fd.get());
  const std::string peer_host = local ? "local" : PeerHost(fd.get());
  {
    MutexLock l(&mu_);
    if (std::string why = RefusalLocked(local, peer_host); !why.empty()) {
      uint64_t held_back = 0;
      if (refusals_.Allow(&held_back))
        LOG_WARN("rpc", "refusing %s: %s%s", local ? "a local caller" : peer.c_str(), why.c_str(),
                 LogThrottle::HeldBackNote(held_back).c_str());
      return;  // fd closes
    }
    (local ? active_local_ : active_)++;
    c = &connections_.emplace_back();
    c->server = this;
    c->fd = fd.get();
    c->local = local;
    c->peer_host = peer_host;
    c->since = Clock::now();
  }
  auto finish = [this, c] {
    MutexLock l(&mu_);
    if (!c->evicted) (c->local ? active_local_ : active_)--;
    connections_.remove_if([c](const Connection& x) { return &x == c; });
    done_.notify_all();
  };
  auto shared_fd = std::make_shared<UniqueFd>(std::move(fd));
  try {
    std::thread([this, c, finish, shared_fd] {
      Serve(c);
      finish();  // the socket closes after the lock is released, with the lambda
    }).detach();
  } catch (const std::system_error& e) {
    // No thread for it (a pids limit): refuse this caller, serve the rest.
    finish();
    uint64_t held_back = 0;
    if (refusals_.Allow(&held_back))
      LOG_WARN("rpc", "refusing %s: cannot start its thread: %s%s", peer.c_str(), e.what(),
               LogThrottle::HeldBackNote(held_back).c_str());
  }
}

std::string RpcServer::RefusalLocked(bool local, const std::string& peer_host) {
  if (!local) {
    int from_peer = 0;
    for (const auto& c : connections_)
      if (!c.evicted && c.peer_host == peer_host) from_peer++;
    if (from_peer >= kMaxConnectionsPerPeer)
      return "already " + std::to_string(from_peer) + " control connections from " + peer_host;
  }
  const int active = local ? active_local_ : active_;
  const int slots = local ? kLocalSlots : max_connections_;
  if (active >= slots && !EvictLocked(local))
    return "all " + std::to_string(slots) + " control connections are being served";
  return "";
}

bool RpcServer::EvictLocked(bool local) {
  const auto now = Clock::now();
  Connection* idle = nullptr;
  Connection* slow = nullptr;
  for (auto& c : connections_) {
    if (c.evicted || c.local != local) continue;
    if (c.between_calls && (!idle || c.since < idle->since)) idle = &c;
    if (!c.between_calls && !c.in_service && now - c.since > kSlowCall &&
        (!slow || c.since < slow->since))
      slow = &c;
  }
  Connection* victim = idle ? idle : slow;
  if (!victim) return false;
  auto secs = std::chrono::duration_cast<std::chrono::seconds>(now - victim->since);
  LOG_WARN("rpc", "control connections all taken: closing %s's, %s for %lld s",
           PeerAddress(victim->fd).c_str(), idle ? "idle" : "still sending its call",
           static_cast<long long>(secs.count()));
  victim->evicted = true;
  (local ? active_local_ : active_)--;
  shutdown(victim->fd, SHUT_RDWR);
  return true;
}

void RpcServer::SetInService(Connection* c) {
  MutexLock l(&mu_);
  c->in_service = true;
}

void RpcServer::Serve(Connection* c) {
  int fd = c->fd;
  RpcCaller caller = CallerOf(fd, c->local);
  c->peer = caller.peer;
  SetSendTimeout(fd, kIdleTimeout);
  if (!c->local) SetNoDelay(fd);
  XDR xdrs;
  xdrrec_create(&xdrs, kRecordBufferSize, kRecordBufferSize, c, ReadRecord, WriteRecord);
  std::unique_ptr<XDR, void (*)(XDR*)> guard(&xdrs, [](XDR* x) { XDR_DESTROY(x); });

  for (;;) {
    AwaitCall(c);
    xdrs.x_op = XDR_DECODE;
    if (!xdrrec_skiprecord(&xdrs)) return;
    rpc_msg call{};
    char cred[2 * MAX_AUTH_BYTES];
    call.rm_call.cb_cred.oa_base = cred;
    call.rm_call.cb_verf.oa_base = cred + MAX_AUTH_BYTES;
    if (!xdr_callmsg(&xdrs, &call)) return;  // end of stream or not RPC at all
    if (!StartCall(c)) return;  // a call already buffered counts as started too
    if (call.rm_direction != CALL) return;
    if (!AnswerCall(c, &caller, &xdrs, call)) return;
  }
}

bool RpcServer::AnswerCall(Connection* c, RpcCaller* caller, XDR* xdrs, const rpc_msg& call) {
  const auto creds = !c->local && tls_source_ ? tls_source_() : nullptr;
  const TlsMode mode = creds ? creds->options().mode : TlsMode::kOff;
  if (call.rm_call.cb_cred.oa_flavor == kAuthTls && call.rm_call.cb_proc == NBDR_NULL &&
      mode != TlsMode::kOff && !c->tls)
    return StartTls(c, caller, xdrs, call, creds);

  rpc_msg reply{};
  reply.rm_xid = call.rm_xid;
  reply.rm_direction = REPLY;
  reply.rm_reply.rp_stat = MSG_ACCEPTED;
  reply.acpted_rply.ar_verf = _null_auth;
  reply.acpted_rply.ar_stat = SUCCESS;

  const RpcProcedure* proc = nullptr;
  std::unique_ptr<char[]> args, result;
  bool decoded = false;
  if (call.rm_call.cb_rpcvers != RPC_MSG_VERSION) {
    reply.rm_reply.rp_stat = MSG_DENIED;
    reply.rjcted_rply.rj_stat = RPC_MISMATCH;
    reply.rjcted_rply.rj_vers.low = RPC_MSG_VERSION;
    reply.rjcted_rply.rj_vers.high = RPC_MSG_VERSION;
  } else if (mode == TlsMode::kRequire && !c->tls && call.rm_call.cb_proc != NBDR_NULL) {
    // RFC 9289: a server that requires TLS rejects calls outside it.
    LOG_WARN("rpc", "%s: call %u refused: TLS is required on the control port first",
             caller->peer.c_str(), static_cast<unsigned>(call.rm_call.cb_proc));
    reply.rm_reply.rp_stat = MSG_DENIED;
    reply.rjcted_rply.rj_stat = AUTH_ERROR;
    reply.rjcted_rply.rj_why = AUTH_TOOWEAK;
  } else if (call.rm_call.cb_prog != NBDR_PROGRAM) {
    reply.acpted_rply.ar_stat = PROG_UNAVAIL;
  } else if (call.rm_call.cb_vers != NBDR_V3) {
    LOG_WARN("rpc", "%s speaks control protocol version %u, this runner %u: refused (an "
             "nbd-cli of another release?)", caller->peer.c_str(),
             static_cast<unsigned>(call.rm_call.cb_vers), static_cast<unsigned>(NBDR_V3));
    reply.acpted_rply.ar_stat = PROG_MISMATCH;
    reply.acpted_rply.ar_vers.low = NBDR_V3;
    reply.acpted_rply.ar_vers.high = NBDR_V3;
  } else if ((proc = FindRpcProcedure(call.rm_call.cb_proc)) == nullptr) {
    reply.acpted_rply.ar_stat = PROC_UNAVAIL;
  } else {
    args.reset(new char[proc->args_size + 1]());
    result.reset(new char[proc->result_size + 1]());
    if (!proc->xdr_args(xdrs, args.get())) {
      LOG_WARN("rpc", "%s from %s: undecodable arguments", proc->name, caller->peer.c_str());
      reply.acpted_rply.ar_stat = GARBAGE_ARGS;
    } else {
      decoded = true;
      SetInService(c);
      service_->Dispatch(*caller, proc->number, args.get(), result.get());
      reply.acpted_rply.ar_results.where = result.get();
      reply.acpted_rply.ar_results.proc = proc->xdr_result;
    }
  }
  // Only SUCCESS carries results (set above). The versions of a
  // PROG_MISMATCH or RPC_MISMATCH share their union with the results:
  // nothing may be written over them.
  xdrs->x_op = XDR_ENCODE;
  bool sent = xdr_replymsg(xdrs, &reply) && xdrrec_endofrecord(xdrs, TRUE);
  if (proc) {
    // Frees whatever decoding allocated, even when it failed half way.
    xdr_free(proc->xdr_args, args.get());
    if (decoded) xdr_free(proc->xdr_result, result.get());
  }
  return sent && !(reply.rm_reply.rp_stat == MSG_ACCEPTED &&
                   reply.acpted_rply.ar_stat == GARBAGE_ARGS);
}

bool RpcServer::StartTls(Connection* c, RpcCaller* caller, XDR* xdrs, const rpc_msg& call,
                         const std::shared_ptr<const TlsCredentials>& creds) {
  rpc_msg reply{};
  reply.rm_xid = call.rm_xid;
  reply.rm_direction = REPLY;
  reply.rm_reply.rp_stat = MSG_ACCEPTED;
  reply.acpted_rply.ar_verf.oa_flavor = AUTH_NONE;
  reply.acpted_rply.ar_verf.oa_base = const_cast<char*>(kStartTlsVerifier);
  reply.acpted_rply.ar_verf.oa_length = sizeof kStartTlsVerifier - 1;
  reply.acpted_rply.ar_stat = SUCCESS;
  reply.acpted_rply.ar_results.where = nullptr;
  reply.acpted_rply.ar_results.proc =
      reinterpret_cast<xdrproc_t>(reinterpret_cast<void (*)(void)>(xdr_void));
  xdrs->x_op = XDR_ENCODE;
  if (!xdr_replymsg(xdrs, &reply) || !xdrrec_endofrecord(xdrs, TRUE)) return false;
  // The client starts its handshake only after this answer, so nothing of
  // it is in the record buffer: the session reads it from the socket.
  auto session = TlsSession::Accept(c->fd, creds, Clock::now() + kTlsHandshakeTimeout);
  if (!session) {
    LOG_WARN("rpc", "%s: TLS handshake failed: %s; closing", caller->peer.c_str(),
             session.status().message().c_str());
    return false;
  }
  c->tls = std::move(*session);
  caller->identity = c->tls->identity();
  LOG_INFO("rpc", "%s: TLS %s, client %s", caller->peer.c_str(), c->tls->description().c_str(),
           caller->identity.empty() ? "without an identity" : caller->identity.c_str());
  return true;
}

void RpcServer::Stop() {
  listener_.Stop();
  local_listener_.Stop();
  if (!local_path_.empty()) unlink(local_path_.c_str());
  MutexLock l(&mu_);
  for (auto& c : connections_) shutdown(c.fd, SHUT_RD);  // idle callers; calls in progress finish
  l.Wait(&done_, [&] { return connections_.empty(); });
  l.Unlock();
  loop_.Stop();
}

}  // namespace nbdr
