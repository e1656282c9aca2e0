// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// nbd-cli's RPC client; see runner_client.h.
#include "cli/runner_client.h"

#include <sys/socket.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace nbdr {

Expected<RunnerClient> RunnerClient::Connect(const HostPort& where, int timeout_s) {
  RunnerClient c;
  c.where_ = where;
  c.target_ = (where.host.find(':') != std::string::npos ? "[" + where.host + "]" : where.host) +
              ":" + std::to_string(where.port);
  auto fd = ConnectTcp(where.host, where.port, timeout_s * 1000);
  if (!fd)
    return Status::Error(fd.status().code(), "cannot reach nbd-runner at " + c.target_ + ": " +
                                                 fd.status().message());
  sockaddr_storage ss;
  socklen_t len = sizeof ss;
  getpeername(fd->get(), reinterpret_cast<sockaddr*>(&ss), &len);
  netbuf addr{len, len, &ss};
  CLIENT* clnt = clnt_vc_create(fd->get(), &addr, NBDR_PROGRAM, NBDR_V2, 0, 0);
  if (!clnt)
    return Status::Error(ECONNREFUSED, "cannot talk RPC to nbd-runner at " + c.target_ + ": " +
                                           clnt_spcreateerror(""));
  int fd_num = fd->release();
  (void)fd_num;
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
  CLIENT* clnt = clnt_vc_create(fd->get(), &addr, NBDR_PROGRAM, NBDR_V2, 0, 0);
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
                                            bool may_use_local) {
  if (!host_given && may_use_local) {
    auto local = RunnerClient::ConnectLocal(AdminSocketPath());
    // No socket, or one nobody listens on any more: the control port.
    if (local || (local.status().code() != ENOENT && local.status().code() != ECONNREFUSED))
      return local;
  }
  return RunnerClient::Connect(host);
}

RunnerClient::~RunnerClient() = default;

std::string IoHostFor(const RunnerClient& client, const std::string& advertised) {
  return IsWildcardOrLoopback(advertised) ? client.connected_host() : advertised;
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
  clnt_stat st = clnt_call(client_.get(), proc, p->xdr_args, static_cast<caddr_t>(args),
                           p->xdr_result, static_cast<caddr_t>(result), tv);
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
      std::string theirs = err.re_vers.high > 0 && err.re_vers.high != NBDR_V2
                               ? "version " + std::to_string(err.re_vers.high)
                               : "another version";
      return Status::Error(EOPNOTSUPP, "nbd-runner at " + target_ +
                                           " speaks control protocol " + theirs +
                                           ", this nbd-cli version " + std::to_string(NBDR_V2) +
                                           ": use the nbd-cli of the runner's release");
    }
    case RPC_PROGUNAVAIL:
      return Status::Error(EPROTO, target_ + " is not an nbd-runner control port");
    default: {
      std::string why = clnt_sperror(client_.get(), "");
      while (!why.empty() && (why.back() == '\n' || why.back() == ' ')) why.pop_back();
      if (why.rfind(": ", 0) == 0) why = why.substr(2);
      // The connection closed before any reply: the runner may be at its
      // connection limit or restarting, or this is not its control port
      // (its NBD port answers an RPC call that way).
      if (st == RPC_CANTRECV)
        why += " (the connection closed before a reply: the runner may be busy or restarting, "
               "or " + target_ + " is not its control port, 24110 by default)";
      return Status::Error(ECOMM, "RPC " + std::string(p->name) + " to nbd-runner at " + target_ +
                                      " failed: " + why + MayHaveHappened(proc));
    }
  }
}

}  // namespace nbdr
