// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// RpcServer: the control port. Speaks ONC RPC (RFC 5531) with record
// marking over TCP, without rpcbind, decoding calls with the XDR routines
// rpcgen made from rpc/nbd_rpc.x, and the same on the admin unix socket.
// A connection gets a thread of its own while a call arrives and is
// answered, so a slow backend call (a gluster create) never stalls other
// callers; between calls it parks on the server's event loop without one.
// Every call goes through one dispatch point, ControlService::Dispatch,
// which sees the caller. The per-connection I/O (call records in, replies
// out, TLS) is in rpc_server_io.cc.
//
// Thread-safety: Start and Stop from the main thread.
#pragma once

#include <rpc/rpc.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <list>
#include <memory>
#include <optional>
#include <condition_variable>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include "runner/control_service.h"
#include "runner/tls_credentials.h"
#include "runner/tls_session.h"
#include "utils/event_loop.h"
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
  // The XDR stream (xdrrec, encoding only) replies are written through.
  struct ReplyStream {
    XDR xdrs{};
    ReplyStream() = default;
    ReplyStream(const ReplyStream&) = delete;
    ReplyStream& operator=(const ReplyStream&) = delete;
    ~ReplyStream() { XDR_DESTROY(&xdrs); }
  };
  struct Connection {
    RpcServer* server = nullptr;
    UniqueFd socket;
    int fd = -1;  // socket's
    bool local = false;  // on the admin unix socket
    // Once the client asked for TLS (RFC 9289): its handshake, to finish by
    // tls_deadline; then the session every record goes through.
    std::unique_ptr<TlsSession> tls_handshake;
    std::chrono::steady_clock::time_point tls_deadline;
    std::unique_ptr<TlsSession> tls;
    std::string peer;  // set by its thread
    std::string peer_host;  // its address without the port ("local" on the admin socket)
    // Set up by the first thread that serves it.
    bool started = false;
    RpcCaller caller;
    std::unique_ptr<ReplyStream> out;
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
  // A connection waiting for its next call is closed after kIdleTimeout,
  // or sooner when every slot is taken and a new client needs one; it
  // parks after kParkAfter. A call, once its first byte is in, must
  // arrive whole within kCallReceiveTimeout, so a client sending a byte
  // now and then cannot hold a slot; and be at most kMaxCallBytes (the
  // largest the protocol's limits allow is about 300 KiB).
  static constexpr std::chrono::seconds kIdleTimeout{60};
  static constexpr std::chrono::milliseconds kParkAfter{100};
  static constexpr std::chrono::seconds kCallReceiveTimeout{10};
  static constexpr uint32_t kMaxCallBytes = 1u << 20;
  static constexpr u_int kRecordBufferSize = 64 * 1024;
  static constexpr std::chrono::milliseconds kRetryDispatch{100};

  void Accept(UniqueFd fd, bool local);
  // With every slot of its kind (TCP or admin socket) taken: closes the
  // connection that has waited longest for its next call, else the one
  // that has been receiving its call longest past kSlowCall; false when
  // every one is being served or is quick.
  bool EvictLocked(bool local) REQUIRES(mu_);
  // Why a new connection may not have a slot now ("" when it may).
  std::string RefusalLocked(bool local, const std::string& peer_host) REQUIRES(mu_);
  void SetInService(Connection* c);
  // Gives c a thread (new, or parked and now readable or at its idle
  // deadline); without one, a new connection is refused and a parked one
  // tried again shortly.
  void Dispatch(Connection* c);
  void Run(Connection* c);
  // Waits on the loop for c's next call, up to its idle deadline; false
  // when it cannot (the connection then ends).
  bool Park(Connection* c);
  // c ends: it leaves connections_ (and its slot) and its socket closes.
  void Finish(Connection* c) EXCLUDES(mu_);
  enum class Outcome { kParked, kEnded };
  // Answers calls until the connection ends, or parks once no call has
  // begun for kParkAfter.
  Outcome Serve(Connection* c);
  // Answers one decoded call header (its arguments are next in in).
  // False when the connection must close.
  bool AnswerCall(Connection* c, XDR* in, XDR* out, const rpc_msg& call);
  // The AUTH_TLS probe (RFC 9289): answers with the STARTTLS verifier and
  // starts the TLS handshake, which Serve runs (RunTlsHandshake: nullopt
  // once done, c->caller then has the identity TLS proved).
  bool StartTls(Connection* c, XDR* out, const rpc_msg& call,
                const std::shared_ptr<const TlsCredentials>& creds);
  std::optional<Outcome> RunTlsHandshake(Connection* c);

  // rpc_server_io.cc. Whether a call has begun (or the connection
  // ended, or its idle deadline passed): waits up to kParkAfter.
  static bool CallBegun(Connection* c);
  // Reads one whole call record (RFC 5531 record marking) into *record,
  // exactly, so nothing of a next call is consumed; false when the
  // connection ends (logged when the client broke a rule).
  static bool ReadCall(Connection* c, std::vector<char>* record);
  static bool RecvForCall(Connection* c, void* buf, size_t len);
  static ssize_t RecvSome(Connection* c, void* buf, size_t len);
  static int WriteRecord(void* handle, void* buf, int len);
  static void OpenReplyStream(Connection* c);
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
