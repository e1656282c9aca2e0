// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// Control-plane roles; see control_policy.h.
#include "runner/control_policy.h"

namespace nbdr {

ControlRole RoleOf(const ControlPolicy& policy, const RpcCaller& caller) {
  if (caller.local) return caller.uid == 0 ? ControlRole::kAdmin : ControlRole::kNobody;
  if (!caller.identity.empty())
    return policy.admins.count(caller.identity) ? ControlRole::kAdmin : ControlRole::kClient;
  // Neither TLS nor a uid: TLS off makes the TCP port the operator's.
  return policy.tls_mode == TlsMode::kOff ? ControlRole::kAdmin : ControlRole::kClient;
}

std::string CallerName(const RpcCaller& caller) {
  if (caller.local)
    return caller.uid < 0 ? "a caller of unknown uid on the admin socket"
                          : "uid " + std::to_string(caller.uid) + " on the admin socket";
  if (caller.identity.empty()) return "a caller without a TLS identity";
  return "identity " + caller.identity;
}

namespace {
// Every argument structure naming a backstore starts with its type and key.
template <typename Args>
bool TypeAndKey(const void* args, std::string* type, std::string* key) {
  const auto* a = static_cast<const Args*>(args);
  *type = a->type;
  *key = a->key;
  return true;
}
}  // namespace

bool KeyOfCall(uint32_t proc, const void* args, std::string* type, std::string* key) {
  switch (proc) {
    case NBDR_CREATE:
    case NBDR_IMPORT:
    case NBDR_CREATE_AUTH: return TypeAndKey<nbdr_create_args>(args, type, key);
    case NBDR_DELETE:
    case NBDR_FORGET:
    case NBDR_TAKE_OVER:
    case NBDR_INFO:
    case NBDR_CHECK: return TypeAndKey<nbdr_key_args>(args, type, key);
    case NBDR_ACCESS: return TypeAndKey<nbdr_access_args>(args, type, key);
    case NBDR_SET_RUNNERS: return TypeAndKey<nbdr_runners_args>(args, type, key);
    case NBDR_RESIZE: return TypeAndKey<nbdr_resize_args>(args, type, key);
    case NBDR_SNAPSHOT: return TypeAndKey<nbdr_snapshot_args>(args, type, key);
    case NBDR_MAP: return TypeAndKey<nbdr_map_args>(args, type, key);
    case NBDR_MAPPED: return TypeAndKey<nbdr_mapped_args>(args, type, key);
    case NBDR_UNMAP: return TypeAndKey<nbdr_unmap_args>(args, type, key);
    default: return false;
  }
}

bool ClientMayCall(uint32_t proc, const void* args) {
  switch (proc) {
    case NBDR_NULL:
    case NBDR_VERSION:
    case NBDR_LIST:
    case NBDR_INFO:
    case NBDR_CHECK:
    case NBDR_MAP:
    case NBDR_MAPPED:
    case NBDR_TAKE_OVER:  // a mapping client's failover (its access list checked)
      return true;
    case NBDR_ACCESS:
      return static_cast<const nbdr_access_args*>(args)->op == NBDR_ACCESS_SHOW;
    case NBDR_SNAPSHOT:  // what a client may open, it may see the snapshots of
      return static_cast<const nbdr_snapshot_args*>(args)->op == NBDR_SNAPSHOT_LIST;
    case NBDR_UNMAP: {
      // Neither a device nor a map token: clear whatever mapping there is.
      const auto* a = static_cast<const nbdr_unmap_args*>(args);
      return *a->device || a->map_token;
    }
    default:
      return false;
  }
}

}  // namespace nbdr
