// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// nbd-cli's RPC client; see runner_client.h.
#include "cli/runner_client.h"

#include <sys/socket.h>

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "cli/call_signals.h"
#include "cli/tls_relay.h"
#include "utils/nbd_protocol.h"

namespace nbdr {

namespace {

// RFC 9289's probe on a fresh connection: a NULL call with the AUTH_TLS
// credential; a runner that offers TLS answers with the verifier
// "STARTTLS", after which the client starts the TLS handshake.
Status ProbeStartTls(int fd, const std::string& target) {
  constexpr uint32_t kAuthTls = 7;
  const uint32_t xid = static_cast<uint32_t>(getpid()) ^ 0x54c5;
  uint8_t call[44];
  const uint32_t words[11] = {0x80000000u | 40, xid, 0 /* CALL */, 2 /* RPC version */,
                              NBDR_PROGRAM, NBDR_V4, 0 /* NULL */, kAuthTls, 0, 0, 0};
  for (int i = 0; i < 11; i++) nbd::Put32(call + 4 * i, words[i]);
  if (Status s = WriteAll(fd, call, sizeof call); !s.ok()) return s;
  uint8_t mark[4];
  if (Status s = ReadAll(fd, mark, 4); !s.ok()) return s;
  const uint32_t len = nbd::Get32(mark) & 0x7fffffff;
  if (len < 24 || len > 1024) return Status::Error(EPROTO, "a malformed answer to the TLS probe");
  std::vector<uint8_t> reply(len);
  if (Status s = ReadAll(fd, reply.data(), len); !s.ok()) return s;
  auto word = [&](size_t i) { return nbd::Get32(reply.data() + 4 * i); };
  if (word(0) != xid || word(1) != 1 /* REPLY */)
    return Status::Error(EPROTO, "a malformed answer to the TLS probe");
  if (word(2) != 0 /* MSG_ACCEPTED */)
    return Status::Error(EPROTO, "nbd-runner at " + target + " refused the TLS probe");
  const uint32_t verf_len = word(4);
  const std::string verifier(reinterpret_cast<const char*>(reply.data()) + 20,
                             std::min<size_t>(verf_len, len - 20));
  if (verifier != "STARTTLS")
    return Status::Error(EPROTONOSUPPORT, "nbd-runner at " + target +
                                              " does not offer TLS on its control port (its tls "
                                              "is off); run without --tls-psk/--tls-certificates");
  return Status();
}

}  // namespace

Expected<RunnerClient> RunnerClient::Connect(const HostPort& where, int timeout_s,
                                             const ClientTlsCredentials* tls) {
  RunnerClient c;
  c.where_ = where;
  c.target_ = FormatHostPort(where);
  auto fd = ConnectTcp(where.host, where.port, timeout_s * 1000);
  if (!fd)
    return Status::Error(fd.status().code(), "cannot reach nbd-runner at " + c.target_ + ": " +
                                                 fd.status().message());
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  getpeername(fd->get(), reinterpret_cast<sockaddr*>(&ss), &len);
  if (tls && tls->enabled()) {
    SetRecvTimeout(fd->get(), std::chrono::seconds(timeout_s));
    if (Status s = ProbeStartTls(fd->get(), c.target_); !s.ok()) return s;
    auto session = ClientTlsSession::Handshake(fd->get(), *tls, where.host, timeout_s);
    if (!session) return session.status().WithContext("control port of " + c.target_);
    auto relay = TlsRelay::Start(std::move(*fd), std::move(*session));
    if (!relay) return relay.status();
    c.relay_ = std::move(*relay);
    *fd = c.relay_->TakeLocalFd();
  }
  netbuf addr{len, len, &ss};
  CLIENT* clnt = clnt_vc_create(fd->get(), &addr, NBDR_PROGRAM, NBDR_V4, 0, 0);
  if (!clnt)
    return Status::Error(ECONNREFUSED, "cannot talk RPC to nbd-runner at " + c.target_ + ": " +
                                           clnt_spcreateerror(""));
  (void)fd->release();
  clnt_control(clnt, CLSET_FD_CLOSE, nullptr);
  c.client_.reset(clnt);
  return c;
}

Expected<RunnerClient> RunnerClient::ConnectLocal(const std::string& path) {
  RunnerClient c;
  c.where_ = {"localhost", 0};  // the runner's NBD port is on this host
  c.target_ = "unix:" + path;
  auto fd = ConnectUnix(path);
  if (!fd)
    return Status::Error(fd.status().code(), "cannot reach nbd-runner at its admin socket " +
                                                 path + ": " + fd.status().message());
  sockaddr_storage ss{};
  ss.ss_family = AF_UNIX;
  netbuf addr{sizeof ss, sizeof ss, &ss};
  CLIENT* clnt = clnt_vc_create(fd->get(), &addr, NBDR_PROGRAM, NBDR_V4, 0, 0);
  if (!clnt)
    return Status::Error(ECONNREFUSED, "cannot talk RPC to nbd-runner at " + c.target_ + ": " +
                                           clnt_spcreateerror(""));
  (void)fd->release();
  clnt_control(clnt, CLSET_FD_CLOSE, nullptr);
  c.client_.reset(clnt);
  return c;
}

std::string AdminSocketPath() {
  const char* env = getenv("NBD_RUNNER_CONTROL_SOCKET");
  return env && *env ? env : kDefaultAdminSocket;
}

Expected<RunnerClient> ConnectCommandRunner(const HostPort& host, bool host_given,
                                            bool may_use_local, const ClientTlsCredentials& tls) {
  if (!host_given && may_use_local) {
    auto local = RunnerClient::ConnectLocal(AdminSocketPath());
    // No socket, or one nobody listens on any more: the control port.
    if (local || (local.status().code() != ENOENT && local.status().code() != ECONNREFUSED))
      return local;
  }
  return RunnerClient::Connect(host, 10, &tls);
}

RunnerClient::~RunnerClient() = default;

std::string IoHostFor(const RunnerClient& client, const std::string& advertised) {
  return IsWildcardOrLoopback(advertised) ? client.connected_host() : advertised;
}

// b's runner set as this host reaches it: a loopback or wildcard address
// (a set registered on the runners' own host) becomes the address this
// host reached client's runner at, as for the NBD port.
std::vector<std::string> ReachableSet(const RunnerClient& client, const nbdr_backstore& b) {
  std::vector<std::string> set;
  for (u_int i = 0; i < b.runners.runners_len; i++) {
    auto hp = ParseHostPort(b.runners.runners_val[i], kDefaultRpcPort);
    if (!hp) continue;
    hp->host = IoHostFor(client, hp->host);
    set.push_back(FormatHostPort(*hp));
  }
  return set;
}

std::string BackendIdFor(const std::string& runner_target, const std::string& export_name) {
  return "nbd-runner://" + runner_target + "/" + export_name;
}

namespace {

// For a call that changes the registry and got no answer: the runner may
// have carried it out, so a blind retry can fail (or succeed) misleadingly.
std::string MayHaveHappened(uint32_t proc) {
  switch (proc) {
    case NBDR_CREATE:
    case NBDR_IMPORT:
    case NBDR_DELETE:
    case NBDR_FORGET:
    case NBDR_SET_RUNNERS:
    case NBDR_TAKE_OVER:
    case NBDR_RESIZE:
    case NBDR_SNAPSHOT:
    case NBDR_CREATE_AUTH:
    case NBDR_MAP:
    case NBDR_MAPPED:
    case NBDR_UNMAP:
      return "; it may have been carried out all the same: check with info before retrying";
    default:
      return "";
  }
}

}  // namespace

Status RunnerClient::Call(uint32_t proc, void* args, void* result) {
  const RpcProcedure* p = FindRpcProcedure(proc);
  if (!p) return Status::Error(EINVAL, "unknown procedure " + std::to_string(proc));
  timeval tv{timeout_s_, 0};
  clnt_stat st;
  {
    const std::string may = MayHaveHappened(proc);
    WaitingCall waiting("nbd-runner at " + target_ + " did not answer " + p->name +
                        (may.empty() ? "; nothing was changed" : may));
    st = clnt_call(client_.get(), proc, p->xdr_args, static_cast<caddr_t>(args), p->xdr_result,
                   static_cast<caddr_t>(result), tv);
  }
  switch (st) {
    case RPC_SUCCESS:
      return Status();
    case RPC_TIMEDOUT:
      return Status::Error(ETIMEDOUT, "nbd-runner at " + target_ + " did not answer " + p->name +
                                          " within " + std::to_string(timeout_s_) + " s" +
                                          MayHaveHappened(proc));
    case RPC_PROCUNAVAIL:
      return Status::Error(EOPNOTSUPP, "nbd-runner at " + target_ + " does not support '" +
                                           p->name + "' (different version?)");
    case RPC_PROGVERSMISMATCH: {
      rpc_err err{};
      clnt_geterr(client_.get(), &err);
      // Runners before version 2 sent 0-0 here.
      std::string theirs = err.re_vers.high > 0 && err.re_vers.high != NBDR_V4
                               ? "version " + std::to_string(err.re_vers.high)
                               : "another version";
      return Status::Error(EOPNOTSUPP, "nbd-runner at " + target_ +
                                           " speaks control protocol " + theirs +
                                           ", this nbd-cli version " + std::to_string(NBDR_V4) +
                                           ": use the nbd-cli of the runner's release");
    }
    case RPC_PROGUNAVAIL:
      return Status::Error(EPROTO, target_ + " is not an nbd-runner control port");
    case RPC_AUTHERROR: {
      rpc_err err{};
      clnt_geterr(client_.get(), &err);
      if (err.re_why == AUTH_TOOWEAK)
        return Status::Error(EACCES, "nbd-runner at " + target_ + " requires TLS on its control "
                                     "port: give --tls-psk FILE or --tls-certificates DIR");
      return Status::Error(EACCES, "nbd-runner at " + target_ + " refused " + p->name +
                                       ": authentication error " + std::to_string(err.re_why));
    }
    default: {
      std::string why = clnt_sperror(client_.get(), "");
      while (!why.empty() && (why.back() == '\n' || why.back() == ' ')) why.pop_back();
      if (why.rfind(": ", 0) == 0) why = why.substr(2);
      // The connection closed before any reply: the runner may be at its
      // connection limit or restarting, or this is not its control port
      // (its NBD port answers an RPC call that way).
      if ((st == RPC_CANTRECV || st == RPC_CANTSEND) && relay_ && !relay_->Failure().empty())
        return Status::Error(EACCES, "nbd-runner at " + target_ + " ended the TLS session (" +
                                         relay_->Failure() + "): it did not accept this "
                                         "client's credentials; its log says why");
      if (st == RPC_CANTRECV)
        why += " (the connection closed before a reply: the runner may be busy or restarting, "
               "or " + target_ + " is not its control port, 24110 by default)";
      return Status::Error(ECOMM, "RPC " + std::string(p->name) + " to nbd-runner at " + target_ +
                                      " failed: " + why + MayHaveHappened(proc));
    }
  }
}

}  // namespace nbdr
