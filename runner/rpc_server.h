// RpcServer: the control port. Speaks ONC RPC (RFC 5531) with record
// marking over TCP, without rpcbind, decoding calls with the XDR routines
// rpcgen made from rpc/nbd_rpc.x. Each connection gets its own thread, so
// a slow backend call (a gluster create) never stalls other callers.
// Every call goes through one dispatch point, ControlService::Dispatch,
// which sees the caller.
//
// Thread-safety: Start and Stop from the main thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <string>
#include <thread>

#include "runner/control_service.h"
#include "utils/mutex.h"
#include "utils/status.h"
#include "utils/tcp_listener.h"
#include "utils/unique_fd.h"

namespace nbdr {

class RpcServer {
 public:
  RpcServer(std::string host, uint16_t port, ControlService* service, int max_connections);
  ~RpcServer();
  RpcServer(const RpcServer&) = delete;
  RpcServer& operator=(const RpcServer&) = delete;

  Status Start();
  uint16_t port() const { return listener_.port(); }
  const std::string& address() const { return listener_.address(); }
  // Stops accepting and waits for calls in progress to finish.
  void Stop();

 private:
  void Accept(UniqueFd fd);
  void Serve(int fd);

  const std::string host_;
  const uint16_t requested_port_;
  ControlService* const service_;
  const int max_connections_;
  TcpListener listener_{"rpc"};

  Mutex mu_;
  std::condition_variable done_;
  int active_ GUARDED_BY(mu_) = 0;
  std::vector<int> active_fds_ GUARDED_BY(mu_);
};

}  // namespace nbdr
