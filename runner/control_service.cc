// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// Control RPC procedures; see control_service.h.
#include "runner/control_service.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "rpc/rpc_table.h"
#include "runner/control_audit.h"
#include "runner/control_policy.h"
#include "utils/log.h"
#include "utils/names.h"
#include "utils/printable.h"
#include "utils/size_parse.h"

namespace nbdr {

char* XdrString(const std::string& s) {
  char* p = static_cast<char*>(malloc(s.size() + 1));
  if (!p) abort();
  memcpy(p, s.c_str(), s.size() + 1);
  return p;
}

// A reply's message fits the protocol's NBDR_MAX_MSG bytes (one that did
// not would fail the whole reply): a longer one, which long keys can make,
// keeps its start and end around " ... ".
void SetStatus(const Status& s, int* status, char** message, const std::string& ok_message) {
  *status = s.code();
  std::string text = s.ok() ? ok_message : s.message();
  if (text.size() > NBDR_MAX_MSG) {
    constexpr size_t kPart = (NBDR_MAX_MSG - 5) / 2;
    text = text.substr(0, kPart) + " ... " + text.substr(text.size() - kPart);
  }
  *message = XdrString(text);
}

namespace {

void FillBackstore(const BackstoreRecord& b, nbdr_backstore* out) {
  out->type = XdrString(b.type);
  out->key = XdrString(b.key);
  out->size = b.size;
  out->block_size = b.block_size;
  out->readonly = b.readonly;
  out->prealloc = b.prealloc;
  out->status = XdrString(StatusName(b.status));
  out->device = XdrString(b.device);
  out->map_time = XdrString(b.map_time);
  out->create_time = XdrString(b.create_time);
  out->extras = XdrString(b.extras_json);
  out->client = XdrString(b.client);
  out->owner = XdrString(b.owner);
  out->runners.runners_len = static_cast<u_int>(b.runners.size());
  out->runners.runners_val =
      static_cast<nbdr_runner*>(calloc(b.runners.size() + 1, sizeof(nbdr_runner)));
  for (size_t i = 0; i < b.runners.size(); i++)
    out->runners.runners_val[i] = XdrString(b.runners[i]);
}

void FillIdentities(const std::vector<std::string>& list, nbdr_access_reply* r) {
  r->identities.identities_len = static_cast<u_int>(list.size());
  r->identities.identities_val =
      static_cast<nbdr_identity*>(calloc(list.size() + 1, sizeof(nbdr_identity)));
  for (size_t i = 0; i < list.size(); i++) r->identities.identities_val[i] = XdrString(list[i]);
}

const char* ProcName(uint32_t proc) {
  const RpcProcedure* p = FindRpcProcedure(proc);
  return p ? p->name : "?";
}

}  // namespace

ControlService::ControlService(BackstoreRegistry* registry, const HandlerSet* handlers,
                               std::string version)
    : registry_(registry), handlers_(handlers), version_(std::move(version)) {}

Status ControlService::Authorize(const RpcCaller& caller, uint32_t proc, const void* args) const {
  const ControlRole role = proc == NBDR_NULL ? ControlRole::kAdmin : RoleOf(policy_, caller);
  if (role == ControlRole::kAdmin) return Status();
  const std::string what = ProcName(proc);
  if (role == ControlRole::kNobody)
    return Status::Error(
        EACCES, what +
                    " refused: the admin socket takes root (uid 0) only, and "
                    "the caller is " +
                    (caller.uid < 0 ? "of unknown uid" : "uid " + std::to_string(caller.uid)));
  if (!ClientMayCall(proc, args))
    return Status::Error(EACCES,
                         what + " refused: " + CallerName(caller) +
                             " is a client of this runner; only its control-admins (and "
                             "root on its admin socket) may " +
                             (proc == NBDR_UNMAP ? "unmap without a device (force)" : what));
  std::string type, key;
  if (KeyOfCall(proc, args, &type, &key)) {
    auto record = registry_->Get(type, key);
    if (record && !registry_->MayOpen(*record, caller.identity))
      return Status::Error(EACCES, what + " refused: " + CallerName(caller) + " may not open " +
                                       type + "/" + key + " (not on its access list)");
  }
  return Status();
}

void ControlService::Dispatch(const RpcCaller& caller, uint32_t proc, void* args, void* result) {
  LOG_DEBUG("rpc", "%s from %s", ProcName(proc), caller.peer.c_str());
  if (Status s = Authorize(caller, proc, args); !s.ok()) {
    Refuse(proc, s, result);
    if (IsAuditedCall(proc, args))
      AuditCall(caller, proc, args, result);
    else
      LOG_WARN("rpc", "%s from %s: %s", ProcName(proc), caller.peer.c_str(), s.message().c_str());
    return;
  }
  switch (proc) {
    case NBDR_NULL:
      break;
    case NBDR_CREATE:
      Create(*static_cast<nbdr_create_args*>(args), static_cast<nbdr_status_reply*>(result));
      break;
    case NBDR_IMPORT:
      Import(*static_cast<nbdr_create_args*>(args), static_cast<nbdr_status_reply*>(result));
      break;
    case NBDR_DELETE:
      Delete(*static_cast<nbdr_key_args*>(args), static_cast<nbdr_status_reply*>(result));
      break;
    case NBDR_FORGET:
      Forget(*static_cast<nbdr_key_args*>(args), static_cast<nbdr_status_reply*>(result));
      break;
    case NBDR_SET_RUNNERS:
      SetRunners(*static_cast<nbdr_runners_args*>(args), static_cast<nbdr_status_reply*>(result));
      break;
    case NBDR_TAKE_OVER:
      TakeOver(MapCallerOf(caller, ""), *static_cast<nbdr_key_args*>(args),
               static_cast<nbdr_status_reply*>(result));
      break;
    case NBDR_RESIZE:
      Resize(*static_cast<nbdr_resize_args*>(args), static_cast<nbdr_status_reply*>(result));
      break;
    case NBDR_SNAPSHOT:
      Snapshot(*static_cast<nbdr_snapshot_args*>(args), static_cast<nbdr_snapshot_reply*>(result));
      break;
    case NBDR_LIST: {
      // A client sees only what it may open.
      const bool all = RoleOf(policy_, caller) == ControlRole::kAdmin;
      List(*static_cast<nbdr_list_args*>(args), all ? nullptr : &caller.identity,
           static_cast<nbdr_list_reply*>(result));
      break;
    }
    case NBDR_INFO:
      Info(*static_cast<nbdr_key_args*>(args), static_cast<nbdr_info_reply*>(result));
      break;
    case NBDR_CHECK:
      Check(*static_cast<nbdr_key_args*>(args), static_cast<nbdr_status_reply*>(result));
      break;
    case NBDR_ACCESS:
      Access(*static_cast<nbdr_access_args*>(args), static_cast<nbdr_access_reply*>(result));
      break;
    case NBDR_CREATE_AUTH:
      CreateAuth(*static_cast<nbdr_create_args*>(args), static_cast<nbdr_access_reply*>(result));
      break;
    case NBDR_VERSION:
      Version(static_cast<nbdr_version_reply*>(result));
      break;
    case NBDR_MAP: {
      auto& a = *static_cast<nbdr_map_args*>(args);
      Map(MapCallerOf(caller, a.client), a, static_cast<nbdr_map_reply*>(result));
      break;
    }
    case NBDR_MAPPED: {
      auto& a = *static_cast<nbdr_mapped_args*>(args);
      Mapped(MapCallerOf(caller, a.client), a, static_cast<nbdr_status_reply*>(result));
      break;
    }
    case NBDR_UNMAP: {
      auto& a = *static_cast<nbdr_unmap_args*>(args);
      Unmap(MapCallerOf(caller, a.client), a, static_cast<nbdr_status_reply*>(result));
      break;
    }
  }
  if (IsAuditedCall(proc, args)) AuditCall(caller, proc, args, result);
}

void ControlService::Refuse(uint32_t proc, const Status& s, void* result) const {
  const RpcReplyHead head = ReplyHeadOf(proc, result);
  if (head.status) SetStatus(s, head.status, head.message, "");
  // Every string of a reply must be set for it to be encoded.
  switch (proc) {
    case NBDR_LIST:
      FillIo(&static_cast<nbdr_list_reply*>(result)->io);
      break;
    case NBDR_INFO:
      FillIo(&static_cast<nbdr_info_reply*>(result)->io);
      break;
    case NBDR_MAP:
      FillIo(&static_cast<nbdr_map_reply*>(result)->io);
      break;
    case NBDR_VERSION: {
      auto* r = static_cast<nbdr_version_reply*>(result);
      r->runner_version = XdrString("");
      r->handlers = XdrString("");
      r->runner_id = XdrString("");
      FillIo(&r->io);
      break;
    }
    case NBDR_ACCESS:
    case NBDR_CREATE_AUTH:
      static_cast<nbdr_access_reply*>(result)->psk_line = XdrString("");
      break;
  }
}

void ControlService::FillIo(nbdr_io_address* io) const {
  io->host = XdrString(io_.host);
  io->port = io_.port;
}

namespace {

// A client's host identity is shown in messages and saveconfig.json: it
// must be one line of printable text. A map names its client (only records
// from before clients were recorded have none).
Status ValidateClient(const char* client) {
  if (!*client) return Status::Error(EINVAL, "the client did not name its host");
  Status s = ValidateHostId(client);
  return s.ok() ? s : Status::Error(EINVAL, "map refused: " + s.message());
}

CreateParams ToCreateParams(const nbdr_create_args& a) {
  CreateParams p;
  p.type = a.type;
  p.key = a.key;
  p.size = a.size;
  p.block_size = a.block_size ? a.block_size : 512;
  p.readonly = a.readonly;
  p.prealloc = a.prealloc;
  for (u_int i = 0; i < a.runners.runners_len; i++) p.runners.push_back(a.runners.runners_val[i]);
  return p;
}

}  // namespace

void ControlService::Create(const nbdr_create_args& a, nbdr_status_reply* r) {
  CreateParams p = ToCreateParams(a);
  Status s = registry_->Create(p);
  if (!s.ok()) LOG_INFO("rpc", "create %s/%s failed: %s", a.type, a.key, s.message().c_str());
  SetStatus(s, &r->status, &r->message,
            "created " + p.type + "/" + p.key + " (" + FormatSize(p.size) + ")");
}

void ControlService::CreateAuth(const nbdr_create_args& a, nbdr_access_reply* r) {
  r->psk_line = XdrString("");
  auto created = registry_->CreateWithAuth(ToCreateParams(a));
  if (!created) {
    LOG_INFO("rpc", "create %s/%s with auth failed: %s", a.type, a.key,
             created.status().message().c_str());
    SetStatus(created.status(), &r->status, &r->message, "");
    return;
  }
  free(r->psk_line);
  r->psk_line = XdrString(created->access.minted_psk_line);
  FillIdentities(created->access.allowed, r);
  SetStatus(
      Status(), &r->status, &r->message,
      std::string("created ") + a.type + "/" + a.key + " (" + FormatSize(created->size) + ")");
}

void ControlService::Import(const nbdr_create_args& a, nbdr_status_reply* r) {
  CreateParams p = ToCreateParams(a);
  p.prealloc = false;  // nothing is allocated: the object exists
  auto size = registry_->Import(p);
  if (!size)
    LOG_INFO("rpc", "import %s/%s failed: %s", a.type, a.key, size.status().message().c_str());
  SetStatus(size.status(), &r->status, &r->message,
            size ? "imported " + p.type + "/" + p.key + " (" + FormatSize(*size) + ")" : "");
}

void ControlService::Delete(const nbdr_key_args& a, nbdr_status_reply* r) {
  Status s = registry_->Delete(a.type, a.key);
  if (!s.ok()) LOG_INFO("rpc", "delete %s/%s failed: %s", a.type, a.key, s.message().c_str());
  SetStatus(s, &r->status, &r->message, std::string("deleted ") + a.type + "/" + a.key);
}

void ControlService::Forget(const nbdr_key_args& a, nbdr_status_reply* r) {
  Status s = registry_->Forget(a.type, a.key);
  if (!s.ok()) LOG_INFO("rpc", "forget %s/%s failed: %s", a.type, a.key, s.message().c_str());
  SetStatus(s, &r->status, &r->message,
            std::string("forgot ") + a.type + "/" + a.key + " (its backing object left in place)");
}

void ControlService::TakeOver(const MapCaller& caller, const nbdr_key_args& a,
                              nbdr_status_reply* r) {
  Status s = registry_->TakeOver(a.type, a.key, caller);
  if (!s.ok() && s.code() != ENOTSUP)
    LOG_INFO("rpc", "take-over %s/%s failed: %s", a.type, a.key, s.message().c_str());
  SetStatus(s, &r->status, &r->message,
            std::string("took ") + a.type + "/" + a.key +
                " over: the other runners of its set are fenced out of its backing object");
}

void ControlService::Resize(const nbdr_resize_args& a, nbdr_status_reply* r) {
  auto sizes = registry_->Resize(a.type, a.key, a.size, a.shrink);
  SetStatus(sizes.status(), &r->status, &r->message,
            sizes ? std::string(a.type) + "/" + a.key + ": " + FormatSize(sizes->first) + " -> " +
                        FormatSize(sizes->second)
                  : "");
}

void ControlService::SetRunners(const nbdr_runners_args& a, nbdr_status_reply* r) {
  std::vector<std::string> expected(a.expected.expected_val,
                                    a.expected.expected_val + a.expected.expected_len);
  std::vector<std::string> runners(a.runners.runners_val,
                                   a.runners.runners_val + a.runners.runners_len);
  Status s = registry_->SetRunners(a.type, a.key, expected, runners);
  if (!s.ok()) LOG_INFO("rpc", "set-runners %s/%s failed: %s", a.type, a.key, s.message().c_str());
  SetStatus(s, &r->status, &r->message,
            std::string("runner set of ") + a.type + "/" + a.key + " now holds " +
                std::to_string(runners.size()) + " runners");
}

void ControlService::List(const nbdr_list_args& a, const std::string* visible_to,
                          nbdr_list_reply* r) {
  FillIo(&r->io);
  std::string type = a.type, filter = a.status;
  Status s;
  if (!type.empty()) s = registry_->CheckHandler(type);
  // "" and "all": any status.
  std::optional<BackstoreStatus> status;
  if (!filter.empty() && filter != "all") status = ParseStatus(filter);
  if (s.ok() && !filter.empty() && filter != "all" && !status)
    s = Status::Error(EINVAL, "unknown status '" + filter + "': use " + StatusNames() + " or all");
  if (!s.ok()) {
    SetStatus(s, &r->status, &r->message, "");
    return;
  }
  auto records = registry_->List(type, status);
  if (visible_to)
    std::erase_if(records,
                  [&](const BackstoreRecord& b) { return !registry_->MayOpen(b, *visible_to); });
  r->backstores.backstores_len = static_cast<u_int>(records.size());
  r->backstores.backstores_val =
      static_cast<nbdr_backstore*>(calloc(records.size() + 1, sizeof(nbdr_backstore)));
  for (size_t i = 0; i < records.size(); i++)
    FillBackstore(records[i], &r->backstores.backstores_val[i]);
  SetStatus(s, &r->status, &r->message, std::to_string(records.size()) + " backstore(s)");
}

Expected<BackstoreRecord> ControlService::Lookup(const nbdr_key_args& a) {
  if (Status s = registry_->CheckHandler(a.type); !s.ok()) return s;
  registry_->FollowOpenSize(a.type, a.key);
  return registry_->Get(a.type, a.key);
}

void ControlService::Info(const nbdr_key_args& a, nbdr_info_reply* r) {
  FillIo(&r->io);
  Expected<BackstoreRecord> rec = Lookup(a);
  if (!rec) {
    SetStatus(rec.status(), &r->status, &r->message, "");
    return;
  }
  r->backstore.backstore_len = 1;
  r->backstore.backstore_val = static_cast<nbdr_backstore*>(calloc(1, sizeof(nbdr_backstore)));
  FillBackstore(*rec, r->backstore.backstore_val);
  SetStatus(Status(), &r->status, &r->message, rec->ExportName());
}

void ControlService::Check(const nbdr_key_args& a, nbdr_status_reply* r) {
  Expected<BackstoreRecord> rec = Lookup(a);
  if (!rec) {
    SetStatus(rec.status(), &r->status, &r->message, "");
    return;
  }
  using Check = BackstoreRegistry::ObjectCheck;
  Check c = registry_->CheckObject(*rec);
  SetStatus(c.state == Check::kAsRegistered
                ? Status()
                : Status::Error(c.code ? c.code : EIO, rec->ExportName() + ": " + c.problem),
            &r->status, &r->message, rec->ExportName() + ": the registered object");
}

void ControlService::Access(const nbdr_access_args& a, nbdr_access_reply* r) {
  r->psk_line = XdrString("");  // every reply carries the string, empty but for auth enable
  std::vector<std::string> ids;
  Status s;
  for (u_int i = 0; i < a.identities.identities_len && s.ok(); i++) {
    ids.emplace_back(a.identities.identities_val[i]);
    s = ValidateTlsIdentity(ids.back());
  }
  using Op = BackstoreRegistry::AccessChange;
  Op op = Op::kShow;
  switch (a.op) {
    case NBDR_ACCESS_SHOW:
      break;
    case NBDR_ACCESS_ALLOW:
      op = Op::kAllow;
      break;
    case NBDR_ACCESS_DENY:
      op = Op::kDeny;
      break;
    case NBDR_ACCESS_OPEN:
      op = Op::kOpen;
      break;
    case NBDR_ACCESS_AUTH_ENABLE:
      op = Op::kAuthEnable;
      break;
    case NBDR_ACCESS_AUTH_DISABLE:
      op = Op::kAuthDisable;
      break;
    default:
      s = Status::Error(EINVAL, "unknown access operation " + std::to_string(a.op));
  }
  if (s.ok() && (op == Op::kAllow || op == Op::kDeny) && ids.empty())
    s = Status::Error(EINVAL, "no identity given");
  if (!s.ok()) {
    SetStatus(s, &r->status, &r->message, "");
    return;
  }
  auto result = registry_->ChangeAccess(a.type, a.key, op, ids);
  if (!result) {
    SetStatus(result.status(), &r->status, &r->message, "");
    return;
  }
  free(r->psk_line);
  r->psk_line = XdrString(result->minted_psk_line);
  const std::vector<std::string>* list = &result->allowed;
  FillIdentities(*list, r);
  const std::string name = std::string(a.type) + "/" + a.key;
  SetStatus(Status(), &r->status, &r->message,
            list->empty() ? name + ": any client may open it"
                          : name + ": " + std::to_string(list->size()) + " identities may open it");
}

MapCaller ControlService::MapCallerOf(const RpcCaller& caller, const char* host) const {
  return {host, caller.identity, RoleOf(policy_, caller) == ControlRole::kAdmin, caller.host};
}

void ControlService::Map(const MapCaller& caller, const nbdr_map_args& a, nbdr_map_reply* r) {
  FillIo(&r->io);
  Status s = ValidateClient(a.client);
  auto grant = s.ok() ? registry_->BeginMap(a.type, a.key, caller)
                      : Expected<BackstoreRegistry::MapGrant>(s);
  if (!grant) {
    SetStatus(grant.status(), &r->status, &r->message, "");
    return;
  }
  r->backstore.backstore_len = 1;
  r->backstore.backstore_val = static_cast<nbdr_backstore*>(calloc(1, sizeof(nbdr_backstore)));
  FillBackstore(grant->record, r->backstore.backstore_val);
  r->map_token = grant->token;
  SetStatus(Status(), &r->status, &r->message, "mapping " + grant->record.ExportName());
}

void ControlService::Mapped(const MapCaller& caller, const nbdr_mapped_args& a,
                            nbdr_status_reply* r) {
  std::string device = a.device;
  Status s = ValidateClient(a.client);
  if (s.ok() && ParseNbdDevice(device) < 0)
    s = Status::Error(EINVAL, "device " + Quoted(device.substr(0, 64)) + " is not /dev/nbdN");
  if (s.ok()) s = registry_->ConfirmMapped(a.type, a.key, device, caller, a.map_token);
  SetStatus(s, &r->status, &r->message, std::string(a.type) + "/" + a.key + " mapped on " + device);
}

void ControlService::Unmap(const MapCaller& caller, const nbdr_unmap_args& a,
                           nbdr_status_reply* r) {
  Status s = registry_->Unmap(a.type, a.key, caller, {a.device, a.map_token});
  SetStatus(s, &r->status, &r->message, std::string("unmapped ") + a.type + "/" + a.key);
}

void ControlService::Version(nbdr_version_reply* r) {
  FillIo(&r->io);
  std::string handlers;
  for (const auto& t : handlers_->Types()) handlers += (handlers.empty() ? "" : ",") + t;
  r->runner_version = XdrString(version_);
  r->handlers = XdrString(handlers);
  r->runner_id = XdrString(runner_id_);
  SetStatus(Status(), &r->status, &r->message, "nbd-runner " + version_);
}

}  // namespace nbdr
