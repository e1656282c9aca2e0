// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// RpcServer: the control port. Speaks ONC RPC (RFC 5531) with record
// marking over TCP, without rpcbind, decoding calls with the XDR routines
// rpcgen made from rpc/nbd_rpc.x, and the same on the admin unix socket.
// Each connection gets its own thread, so
// a slow backend call (a gluster create) never stalls other callers.
// Every call goes through one dispatch point, ControlService::Dispatch,
// which sees the caller.
//
// Thread-safety: Start and Stop from the main thread.
#pragma once

#include <rpc/rpc.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <list>
#include <memory>
#include <condition_variable>
#include <cstdint>
#include <string>
#include <thread>

#include "runner/control_service.h"
#include "runner/tls_credentials.h"
#include "runner/tls_session.h"
#include "utils/log_throttle.h"
#include "utils/mutex.h"
#include "utils/status.h"
#include "utils/tcp_listener.h"
#include "utils/unique_fd.h"

namespace nbdr {

class RpcServer {
 public:
  // tls_source: the runner's TLS credentials now (they change on SIGHUP);
  // with TLS on or required, clients may start TLS as RFC 9289 says, and
  // with TLS required they must before any other call.
  using TlsSource = std::function<std::shared_ptr<const TlsCredentials>()>;
  RpcServer(std::string host, uint16_t port, ControlService* service, int max_connections,
            TlsSource tls_source = nullptr);
  ~RpcServer();
  RpcServer(const RpcServer&) = delete;
  RpcServer& operator=(const RpcServer&) = delete;

  // One control connection, as the accept path and its thread see it.
  struct Connection {
    RpcServer* server = nullptr;
    int fd = -1;
    bool local = false;  // on the admin unix socket
    // Once the client asked for TLS (RFC 9289): every record goes through it.
    std::unique_ptr<TlsSession> tls;
    std::string peer;  // set by its thread
    std::string peer_host;  // its address without the port ("local" on the admin socket)
    // Guarded by server->mu_: waiting for a call's first byte, or in a
    // call being served (after its arguments arrived), and since when it
    // has been between calls or in its current call. Only a connection
    // between calls, or one still receiving a call kSlowCall after it
    // began (a client sending a byte now and then), is closed to make room.
    bool between_calls = true;
    bool in_service = false;
    bool evicted = false;
    std::chrono::steady_clock::time_point since;
  };

  Status Start();
  // Also serves the program on a unix socket at path (the admin socket):
  // its callers are known by uid (SO_PEERCRED). Stop removes the file.
  Status StartLocal(const std::string& path);
  uint16_t port() const { return listener_.port(); }
  const std::string& address() const { return listener_.address(); }
  // Stops accepting and waits for calls in progress to finish.
  void Stop();

 private:
  using Clock = std::chrono::steady_clock;
  void Accept(UniqueFd fd, bool local);
  // With every slot of its kind (TCP or admin socket) taken: closes the
  // connection that has waited longest for its next call, else the one
  // that has been receiving its call longest past kSlowCall; false when
  // every one is being served or is quick.
  bool EvictLocked(bool local) REQUIRES(mu_);
  // Why a new connection may not have a slot now ("" when it may).
  std::string RefusalLocked(bool local, const std::string& peer_host) REQUIRES(mu_);
  void SetInService(Connection* c);
  void Serve(Connection* c);
  // Answers one decoded call header (its arguments are next in xdrs).
  // False when the connection must close.
  bool AnswerCall(Connection* c, RpcCaller* caller, XDR* xdrs, const rpc_msg& call);
  // The AUTH_TLS probe (RFC 9289): answers with the STARTTLS verifier, then
  // runs the TLS handshake; *caller gets the identity TLS proved.
  bool StartTls(Connection* c, RpcCaller* caller, XDR* xdrs, const rpc_msg& call,
                const std::shared_ptr<const TlsCredentials>& creds);
  static int WriteRecord(void* handle, void* buf, int len);
  static int ReadRecord(void* handle, void* buf, int len);
  // The connection now waits for a call / has begun one; false if it was
  // closed to make room meanwhile.
  void AwaitCall(Connection* c);
  bool StartCall(Connection* c);

  const std::string host_;
  const uint16_t requested_port_;
  ControlService* const service_;
  const int max_connections_;
  const TlsSource tls_source_;
  EventLoop loop_{"rpc-loop"};  // accepts on both listeners
  TcpListener listener_{"rpc", &loop_};
  TcpListener local_listener_{"rpc-local", &loop_};
  std::string local_path_;  // "" until StartLocal

  Mutex mu_;
  std::condition_variable done_;
  LogThrottle refusals_;  // callers refused for want of a thread
  // Connections not closed to make room: on the TCP port, and on the
  // admin socket (slots of its own: a flood of the port never locks root
  // out).
  int active_ GUARDED_BY(mu_) = 0;
  int active_local_ GUARDED_BY(mu_) = 0;
  std::list<Connection> connections_ GUARDED_BY(mu_);
};

}  // namespace nbdr
