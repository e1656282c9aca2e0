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

// nbd-cli writes a call at once: one still arriving after this may lose
// its slot to a new caller when every slot is taken.
constexpr std::chrono::seconds kSlowCall{2};
// Control connections one client address may hold, and the admin
// socket's own slots.
constexpr int kMaxConnectionsPerPeer = 16;
constexpr int kLocalSlots = 16;

// RFC 9289: the client's credential flavor asking for TLS, and the
// verifier of the server's answer that it may start.
constexpr int32_t kAuthTls = 7;
constexpr char kStartTlsVerifier[] = "STARTTLS";
// How long a client has for the TLS handshake on the control port.
constexpr std::chrono::seconds kTlsHandshakeTimeout{10};

}  // namespace

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
  const std::string peer_host = local ? "local" : PeerHost(fd.get());
  {
    MutexLock l(&mu_);
    if (std::string why = RefusalLocked(local, peer_host); !why.empty()) {
      uint64_t held_back = 0;
      if (refusals_.Allow(&held_back))
        LOG_WARN("rpc", "refusing %s: %s%s", local ? "a local caller" : PeerAddress(fd.get()).c_str(),
                 why.c_str(), LogThrottle::HeldBackNote(held_back).c_str());
      return;  // fd closes
    }
    (local ? active_local_ : active_)++;
    c = &connections_.emplace_back();
    c->server = this;
    c->fd = fd.get();
    c->socket = std::move(fd);
    c->local = local;
    c->peer_host = peer_host;
    c->since = Clock::now();
  }
  Dispatch(c);
}

void RpcServer::Dispatch(Connection* c) {
  try {
    std::thread([this, c] { Run(c); }).detach();
    return;
  } catch (const std::system_error& e) {
    // No thread for it (a pids limit): a new caller is refused, the rest
    // served; a parked one tries again shortly.
    uint64_t held_back = 0;
    const bool retry = c->started && loop_.After(kRetryDispatch, [this, c] { Dispatch(c); }).ok();
    if (refusals_.Allow(&held_back))
      LOG_WARN("rpc", "%s %s: cannot start its thread: %s%s", retry ? "delaying" : "refusing",
               PeerAddress(c->fd).c_str(), e.what(), LogThrottle::HeldBackNote(held_back).c_str());
    if (retry) return;
  }
  Finish(c);
}

void RpcServer::Run(Connection* c) {
  if (Serve(c) == Outcome::kParked && Park(c)) return;
  Finish(c);
}

bool RpcServer::Park(Connection* c) {
  Clock::time_point deadline;
  {
    MutexLock l(&mu_);
    deadline = c->since + kIdleTimeout;
  }
  if (c->tls_handshake) deadline = std::min(deadline, c->tls_deadline);
  const auto timeout = std::max(std::chrono::milliseconds(1),
                                std::chrono::ceil<std::chrono::milliseconds>(
                                    deadline - Clock::now()));
  Status s = loop_.WhenReadable(c->fd, timeout, [this, c](bool) { Dispatch(c); });
  if (!s.ok()) LOG_WARN("rpc", "%s: cannot wait for its next call: %s; closing", c->peer.c_str(),
                        s.message().c_str());
  return s.ok();
}

void RpcServer::Finish(Connection* c) {
  std::list<Connection> gone;  // destroyed (its socket closed) after the lock
  MutexLock l(&mu_);
  if (!c->evicted) (c->local ? active_local_ : active_)--;
  for (auto it = connections_.begin(); it != connections_.end(); ++it) {
    if (&*it == c) {
      gone.splice(gone.begin(), connections_, it);
      break;
    }
  }
  done_.notify_all();
  l.Unlock();
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

RpcServer::Outcome RpcServer::Serve(Connection* c) {
  if (!c->started) {
    c->started = true;
    c->caller = CallerOf(c->fd, c->local);
    c->peer = c->caller.peer;
    SetSendTimeout(c->fd, kIdleTimeout);
    if (!c->local) SetNoDelay(c->fd);
    OpenReplyStream(c);
  }
  std::vector<char> record;
  for (;;) {
    if (c->tls_handshake) {
      if (auto outcome = RunTlsHandshake(c)) return *outcome;
    }
    if (!CallBegun(c)) return Outcome::kParked;
    if (!ReadCall(c, &record)) return Outcome::kEnded;
    XDR in;
    xdrmem_create(&in, record.data(), static_cast<u_int>(record.size()), XDR_DECODE);
    std::unique_ptr<XDR, void (*)(XDR*)> guard(&in, [](XDR* x) { XDR_DESTROY(x); });
    rpc_msg call{};
    char cred[2 * MAX_AUTH_BYTES];
    call.rm_call.cb_cred.oa_base = cred;
    call.rm_call.cb_verf.oa_base = cred + MAX_AUTH_BYTES;
    if (!xdr_callmsg(&in, &call)) return Outcome::kEnded;  // not RPC at all
    if (call.rm_direction != CALL) return Outcome::kEnded;
    if (!AnswerCall(c, &in, &c->out->xdrs, call)) return Outcome::kEnded;
    AwaitCall(c);
  }
}

bool RpcServer::AnswerCall(Connection* c, XDR* in, XDR* out, const rpc_msg& call) {
  RpcCaller* caller = &c->caller;
  const auto creds = !c->local && tls_source_ ? tls_source_() : nullptr;
  const TlsMode mode = creds ? creds->options().mode : TlsMode::kOff;
  if (call.rm_call.cb_cred.oa_flavor == kAuthTls && call.rm_call.cb_proc == NBDR_NULL &&
      mode != TlsMode::kOff && !c->tls)
    return StartTls(c, out, call, creds);

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
  } else if (call.rm_call.cb_vers != NBDR_V4) {
    LOG_WARN("rpc", "%s speaks control protocol version %u, this runner %u: refused (an "
             "nbd-cli of another release?)", caller->peer.c_str(),
             static_cast<unsigned>(call.rm_call.cb_vers), static_cast<unsigned>(NBDR_V4));
    reply.acpted_rply.ar_stat = PROG_MISMATCH;
    reply.acpted_rply.ar_vers.low = NBDR_V4;
    reply.acpted_rply.ar_vers.high = NBDR_V4;
  } else if ((proc = FindRpcProcedure(call.rm_call.cb_proc)) == nullptr) {
    reply.acpted_rply.ar_stat = PROC_UNAVAIL;
  } else {
    args.reset(new char[proc->args_size + 1]());
    result.reset(new char[proc->result_size + 1]());
    if (!proc->xdr_args(in, args.get())) {
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
  bool sent = xdr_replymsg(out, &reply) && xdrrec_endofrecord(out, TRUE);
  if (proc) {
    // Frees whatever decoding allocated, even when it failed half way.
    xdr_free(proc->xdr_args, args.get());
    if (decoded) xdr_free(proc->xdr_result, result.get());
  }
  return sent && !(reply.rm_reply.rp_stat == MSG_ACCEPTED &&
                   reply.acpted_rply.ar_stat == GARBAGE_ARGS);
}

bool RpcServer::StartTls(Connection* c, XDR* out, const rpc_msg& call,
                         const std::shared_ptr<const TlsCredentials>& creds) {
  RpcCaller* caller = &c->caller;
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
  if (!xdr_replymsg(out, &reply) || !xdrrec_endofrecord(out, TRUE)) return false;
  // The client starts its handshake only after this answer, and calls are
  // read exactly: the session reads all of it from the socket.
  auto session = TlsSession::Begin(c->fd, creds);
  if (!session) {
    LOG_WARN("rpc", "%s: cannot start TLS: %s; closing", caller->peer.c_str(),
             session.status().message().c_str());
    return false;
  }
  c->tls_handshake = std::move(*session);  // Serve runs it next
  c->tls_deadline = Clock::now() + kTlsHandshakeTimeout;
  return true;
}

std::optional<RpcServer::Outcome> RpcServer::RunTlsHandshake(Connection* c) {
  Status s = c->tls_handshake->ContinueHandshake(c->tls_deadline, kParkAfter);
  if (s.code() == EAGAIN) return Outcome::kParked;
  if (!s.ok()) {
    LOG_WARN("rpc", "%s: %s; closing", c->peer.c_str(), s.message().c_str());
    return Outcome::kEnded;
  }
  c->tls = std::move(c->tls_handshake);
  c->caller.identity = c->tls->identity();
  LOG_INFO("rpc", "%s: TLS %s, client %s", c->peer.c_str(), c->tls->description().c_str(),
           c->caller.identity.empty() ? "without an identity" : c->caller.identity.c_str());
  return std::nullopt;
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
