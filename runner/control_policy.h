// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// ControlPolicy: who may call which control procedure. Three kinds of
// caller:
//  - admin: root on the admin socket, a TLS identity named in
//    control-admins, or, only while TLS is off on the runner (no caller
//    can prove anything; the port is on loopback by default), any caller
//    of the TCP port;
//  - client: any other TLS identity, and a plain caller while TLS is on
//    (not required): version, list and info of the backstores its
//    identity may open (their access lists, as on the NBD port), map,
//    mapped and unmap of those, never a forced unmap;
//  - nobody: a non-root uid on the admin socket.
// Refusals are EACCES with a message naming the identity seen and what
// it lacks. Pure functions over the caller and the call; thread-safe.
#pragma once

#include <cstdint>
#include <set>
#include <string>

#include "nbd_rpc.h"
#include "runner/tls_credentials.h"

namespace nbdr {

// Who is calling, as the transport knows it.
struct RpcCaller {
  std::string peer;      // "127.0.0.1:40012", or "local pid 123"
  std::string host;      // a TCP peer's address without its port; "" when local
  std::string identity;  // who the transport proved the caller is; "" when it proved nothing
  bool local = false;    // on the admin unix socket
  long uid = -1;         // a local caller's uid (SO_PEERCRED); -1: unknown
};

struct ControlPolicy {
  TlsMode tls_mode = TlsMode::kOff;
  std::set<std::string> admins;  // control-admins: TLS identities
};

enum class ControlRole { kAdmin, kClient, kNobody };

ControlRole RoleOf(const ControlPolicy& policy, const RpcCaller& caller);

// "identity psk:alice", "uid 1000 on the admin socket", "a caller without
// a TLS identity": for refusals.
std::string CallerName(const RpcCaller& caller);

// The type and key a call names; false for calls about no one backstore
// (null, list, version, create and import name one not yet registered).
bool KeyOfCall(uint32_t proc, const void* args, std::string* type, std::string* key);

// Whether a client may make this call at all (its key is checked apart):
// reads, map, mapped and unmap (not forced); nothing that creates,
// deletes or changes access.
bool ClientMayCall(uint32_t proc, const void* args);

}  // namespace nbdr
