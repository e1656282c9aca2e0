// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// RunnerClient: nbd-cli's connection to a runner's control port. Makes the
// ONC RPC calls of rpc/nbd_rpc.x over one TCP connection (no rpcbind).
// Move-only; one client is used by one thread.
#pragma once

#include <rpc/rpc.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "nbd_rpc.h"
#include "cli/client_tls.h"
#include "cli/tls_relay.h"
#include "rpc/rpc_table.h"
#include "utils/net.h"
#include "utils/status.h"

namespace nbdr {

inline constexpr uint16_t kDefaultRpcPort = 24110;
inline constexpr int kDefaultCallTimeoutS = 30;
inline constexpr char kDefaultAdminSocket[] = "/run/nbd-runner/control.sock";

// The runner's admin socket: $NBD_RUNNER_CONTROL_SOCKET, or the default.
std::string AdminSocketPath();

class RunnerClient {
 public:
  // Connects to host:port. Errors say which runner could not be reached.
  // With tls enabled, the connection starts TLS first (RFC 9289: a NULL
  // call with AUTH_TLS, the STARTTLS verifier, the handshake) and every
  // call goes through a TlsRelay.
  static Expected<RunnerClient> Connect(const HostPort& where, int timeout_s = 10,
                                        const ClientTlsCredentials* tls = nullptr);
  // Connects to a runner's admin unix socket (target "unix:PATH").
  static Expected<RunnerClient> ConnectLocal(const std::string& path);

  RunnerClient(RunnerClient&&) noexcept = default;
  RunnerClient& operator=(RunnerClient&&) noexcept = default;
  ~RunnerClient();

  // Calls procedure proc; result must be zeroed and is filled on success
  // (release it with xdr_free(proc's result routine, result)).
  Status Call(uint32_t proc, void* args, void* result);

  // How long Call waits for a reply (default kDefaultCallTimeoutS).
  void set_call_timeout(int seconds) { timeout_s_ = seconds; }

  // "host:port" as given, and the address we are connected to.
  const std::string& target() const { return target_; }
  const std::string& connected_host() const { return where_.host; }

 private:
  RunnerClient() = default;
  struct ClientDeleter {
    void operator()(CLIENT* c) const { clnt_destroy(c); }
  };
  std::unique_ptr<TlsRelay> relay_;  // destroyed after client_, which closes its end
  std::unique_ptr<CLIENT, ClientDeleter> client_;
  HostPort where_;
  std::string target_;
  int timeout_s_ = kDefaultCallTimeoutS;
};

// The runner a command talks to: host, unless none was given, the command
// may use the admin socket (may_use_local) and one answers at
// AdminSocketPath() (a runner on this host: root needs no credentials).
// A socket file nobody listens on is passed over for host.
Expected<RunnerClient> ConnectCommandRunner(const HostPort& host, bool host_given,
                                            bool may_use_local, const ClientTlsCredentials& tls);

// Where to reach the runner's NBD port: its advertised address, unless
// that is a loopback or wildcard one, then the address we reached its
// control port on (clients behind NAT, guests reaching the host).
std::string IoHostFor(const RunnerClient& client, const std::string& advertised);

// b's runner set as this host reaches it: a loopback or wildcard address
// (a set registered on the runners' own host) becomes the address this
// host reached client's runner at, as for the NBD port.
std::vector<std::string> ReachableSet(const RunnerClient& client, const nbdr_backstore& b);

// The backend identifier nbd-cli sets on a mapped device; names the runner
// and export so unmap by device and reconnects find their way back.
std::string BackendIdFor(const std::string& runner_target, const std::string& export_name);

// A decoded result that frees itself with its XDR routine.
template <typename T>
class RpcResult {
 public:
  explicit RpcResult(uint32_t proc) : proc_(FindRpcProcedure(proc)) {}
  ~RpcResult() {
    if (filled_) xdr_free(proc_->xdr_result, &value_);
  }
  RpcResult(const RpcResult&) = delete;
  RpcResult& operator=(const RpcResult&) = delete;
  T* get() { return &value_; }
  const T& operator*() const { return value_; }
  const T* operator->() const { return &value_; }
  void set_filled() { filled_ = true; }

 private:
  const RpcProcedure* proc_;
  T value_{};
  bool filled_ = false;
};

}  // namespace nbdr
