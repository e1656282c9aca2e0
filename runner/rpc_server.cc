// The control port: ONC RPC over TCP; see rpc_server.h.
#include "runner/rpc_server.h"

#include <rpc/rpc.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>

#include "rpc/rpc_table.h"
#include "utils/log.h"
#include "utils/net.h"

namespace nbdr {

namespace {

constexpr int kIdleTimeoutS = 60;
constexpr u_int kRecordBufferSize = 64 * 1024;

// xdrrec I/O callbacks on a blocking socket with SO_RCVTIMEO set.
int ReadRecord(void* handle, void* buf, int len) {
  int fd = *static_cast<int*>(handle);
  for (;;) {
    ssize_t n = recv(fd, buf, static_cast<size_t>(len), 0);
    if (n < 0 && errno == EINTR) continue;
    return n <= 0 ? -1 : static_cast<int>(n);
  }
}

int WriteRecord(void* handle, void* buf, int len) {
  int fd = *static_cast<int*>(handle);
  return WriteAll(fd, buf, static_cast<size_t>(len)).ok() ? len : -1;
}

}  // namespace

RpcServer::RpcServer(std::string host, uint16_t port, ControlService* service, int max_connections)
    : host_(std::move(host)),
      requested_port_(port),
      service_(service),
      max_connections_(max_connections) {}

RpcServer::~RpcServer() { Stop(); }

Status RpcServer::Start() {
  Status s =
      listener_.Start(host_, requested_port_, [this](UniqueFd fd) { Accept(std::move(fd)); });
  return s.WithContext("RPC port");
}

void RpcServer::Accept(UniqueFd fd) {
  int cfd = fd.get();
  {
    MutexLock l(&mu_);
    if (active_ >= max_connections_) {
      LOG_WARN("rpc", "refusing %s: %d control connections open", PeerAddress(cfd).c_str(),
               active_);
      return;  // fd closes
    }
    active_++;
    active_fds_.push_back(cfd);
  }
  std::thread([this, f = std::move(fd)] {
    Serve(f.get());
    MutexLock l(&mu_);
    active_fds_.erase(std::find(active_fds_.begin(), active_fds_.end(), f.get()));
    active_--;
    done_.notify_all();  // f closes after the lock is released, with the lambda
  }).detach();
}

void RpcServer::Serve(int fd) {
  RpcCaller caller{PeerAddress(fd)};
  timeval tv{kIdleTimeoutS, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  SetNoDelay(fd);
  int handle = fd;
  XDR xdrs;
  xdrrec_create(&xdrs, kRecordBufferSize, kRecordBufferSize, &handle, ReadRecord, WriteRecord);
  std::unique_ptr<XDR, void (*)(XDR*)> guard(&xdrs, [](XDR* x) { XDR_DESTROY(x); });

  for (;;) {
    xdrs.x_op = XDR_DECODE;
    if (!xdrrec_skiprecord(&xdrs)) return;
    rpc_msg call{};
    char cred[2 * MAX_AUTH_BYTES];
    call.rm_call.cb_cred.oa_base = cred;
    call.rm_call.cb_verf.oa_base = cred + MAX_AUTH_BYTES;
    if (!xdr_callmsg(&xdrs, &call)) return;  // end of stream or not RPC at all
    if (call.rm_direction != CALL) return;

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
    } else if (call.rm_call.cb_prog != NBDR_PROGRAM) {
      reply.acpted_rply.ar_stat = PROG_UNAVAIL;
    } else if (call.rm_call.cb_vers != NBDR_V1) {
      reply.acpted_rply.ar_stat = PROG_MISMATCH;
      reply.acpted_rply.ar_vers.low = NBDR_V1;
      reply.acpted_rply.ar_vers.high = NBDR_V1;
    } else if ((proc = FindRpcProcedure(call.rm_call.cb_proc)) == nullptr) {
      reply.acpted_rply.ar_stat = PROC_UNAVAIL;
    } else {
      args.reset(new char[proc->args_size + 1]());
      result.reset(new char[proc->result_size + 1]());
      if (!proc->xdr_args(&xdrs, args.get())) {
        LOG_WARN("rpc", "%s from %s: undecodable arguments", proc->name, caller.peer.c_str());
        reply.acpted_rply.ar_stat = GARBAGE_ARGS;
      } else {
        decoded = true;
        service_->Dispatch(caller, proc->number, args.get(), result.get());
        reply.acpted_rply.ar_results.where = result.get();
        reply.acpted_rply.ar_results.proc = proc->xdr_result;
      }
    }
    if (reply.acpted_rply.ar_stat != SUCCESS || reply.rm_reply.rp_stat != MSG_ACCEPTED) {
      reply.acpted_rply.ar_results.where = nullptr;
      reply.acpted_rply.ar_results.proc =
          reinterpret_cast<xdrproc_t>(reinterpret_cast<void (*)(void)>(xdr_void));
    }
    xdrs.x_op = XDR_ENCODE;
    bool sent = xdr_replymsg(&xdrs, &reply) && xdrrec_endofrecord(&xdrs, TRUE);
    if (proc) {
      // Frees whatever decoding allocated, even when it failed half way.
      xdr_free(proc->xdr_args, args.get());
      if (decoded) xdr_free(proc->xdr_result, result.get());
    }
    if (!sent) return;
    if (reply.acpted_rply.ar_stat == GARBAGE_ARGS) return;
  }
}

void RpcServer::Stop() {
  listener_.Stop();
  MutexLock l(&mu_);
  for (int fd : active_fds_) shutdown(fd, SHUT_RD);  // idle callers; calls in progress finish
  l.Wait(&done_, [&] { return active_ == 0; });
}

}  // namespace nbdr
