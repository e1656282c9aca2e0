// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// The audit trail; see control_audit.h.
#include "runner/control_audit.h"

#include <cstring>
#include <iterator>
#include <string>

#include "rpc/rpc_table.h"
#include "runner/control_policy.h"
#include "utils/log.h"
#include "utils/printable.h"

namespace nbdr {

namespace {

// What one call was about, from its arguments.
struct CallFacts {
  std::string type, key, detail;
};

CallFacts FactsOf(uint32_t proc, const void* args) {
  CallFacts f;
  KeyOfCall(proc, args, &f.type, &f.key);
  auto add = [&](const char* name, const std::string& value) {
    f.detail += std::string(" ") + name + " " + value;
  };
  switch (proc) {
    case NBDR_CREATE:
    case NBDR_IMPORT:
    case NBDR_CREATE_AUTH: {
      const auto* a = static_cast<const nbdr_create_args*>(args);
      add("size", std::to_string(a->size));
      if (a->readonly) f.detail += " readonly";
      for (u_int i = 0; i < a->runners.runners_len; i++)
        add("runner", Quoted(a->runners.runners_val[i]));
      break;
    }
    case NBDR_ACCESS: {
      const auto* a = static_cast<const nbdr_access_args*>(args);
      static const char* const kOps[] = {"show", "allow", "deny", "open", "auth-enable",
                                         "auth-disable"};
      const auto op = static_cast<unsigned>(a->op);
      add("op", op < std::size(kOps) ? kOps[op] : std::to_string(op));
      for (u_int i = 0; i < a->identities.identities_len; i++)
        add("identity", Quoted(a->identities.identities_val[i]));
      break;
    }
    case NBDR_SNAPSHOT: {
      const auto* a = static_cast<const nbdr_snapshot_args*>(args);
      static const char* const kOps[] = {"list", "create", "delete", "rollback"};
      const auto op = static_cast<unsigned>(a->op);
      add("op", op < std::size(kOps) ? kOps[op] : std::to_string(op));
      add("name", Quoted(a->name));
      if (a->copy) f.detail += " copy";
      if (a->force) f.detail += " force";
      break;
    }
    case NBDR_SET_RUNNERS: {
      const auto* a = static_cast<const nbdr_runners_args*>(args);
      for (u_int i = 0; i < a->runners.runners_len; i++)
        add("runner", Quoted(a->runners.runners_val[i]));
      break;
    }
    case NBDR_MAP:
      add("client", Quoted(static_cast<const nbdr_map_args*>(args)->client));
      break;
    case NBDR_MAPPED: {
      const auto* a = static_cast<const nbdr_mapped_args*>(args);
      add("device", Quoted(a->device));
      add("client", Quoted(a->client));
      break;
    }
    case NBDR_UNMAP: {
      const auto* a = static_cast<const nbdr_unmap_args*>(args);
      if (*a->device) add("device", Quoted(a->device));
      if (*a->client) add("client", Quoted(a->client));
      if (a->map_token) f.detail += " (undoing its map)";
      break;
    }
  }
  return f;
}

}  // namespace

bool IsAuditedCall(uint32_t proc, const void* args) {
  switch (proc) {
    case NBDR_CREATE:
    case NBDR_IMPORT:
    case NBDR_DELETE:
    case NBDR_FORGET:
    case NBDR_SET_RUNNERS:
    case NBDR_TAKE_OVER:
    case NBDR_RESIZE:
    case NBDR_CREATE_AUTH:
    case NBDR_MAP:
    case NBDR_MAPPED:
    case NBDR_UNMAP:
      return true;
    case NBDR_ACCESS:
      return static_cast<const nbdr_access_args*>(args)->op != NBDR_ACCESS_SHOW;
    case NBDR_SNAPSHOT:
      return static_cast<const nbdr_snapshot_args*>(args)->op != NBDR_SNAPSHOT_LIST;
    default:
      return false;
  }
}

void AuditCall(const RpcCaller& caller, uint32_t proc, const void* args, void* result) {
  const CallFacts f = FactsOf(proc, args);
  const RpcReplyHead head = ReplyHeadOf(proc, result);
  const int status = head.status ? *head.status : 0;
  const char* message = head.message && *head.message ? *head.message : "";
  const RpcProcedure* p = FindRpcProcedure(proc);
  const std::string outcome =
      status == 0 ? std::string("ok")
                  : std::string("failed (") + (strerrorname_np(status) ? strerrorname_np(status)
                                                                       : "?") +
                        "): " + Quoted(message);
  LOG_INFO("audit", "%s type %s key %s%s by %s from %s: %s", p ? p->name : "?",
           Quoted(f.type).c_str(), Quoted(f.key).c_str(), f.detail.c_str(),
           caller.identity.empty() ? "(no identity)" : Quoted(caller.identity).c_str(),
           caller.peer.c_str(), outcome.c_str());
}

}  // namespace nbdr
