// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// ControlService: what the control RPC procedures do. Decoded arguments in,
// filled reply structures out (strings allocated with malloc, freed by
// xdr_free). Dispatch() is the one entry point for every call: it sees
// the caller and the procedure, and decides who may call what: on the
// admin unix socket only root (uid 0); TCP callers are not authenticated
// yet (the control port listens on loopback by default).
//
// Thread-safe: called from many RPC connection threads at once.
#pragma once

#include <cstdint>
#include <string>

#include "nbd_rpc.h"
#include "runner/backstore_registry.h"
#include "runner/control_policy.h"
#include "utils/status.h"

namespace nbdr {


struct IoAddress {
  std::string host;  // as configured; "" = any address
  uint16_t port = 0;
};

class ControlService {
 public:
  ControlService(BackstoreRegistry* registry, const HandlerSet* handlers, std::string version);

  // Set once the NBD port is bound (before the RPC port starts serving).
  void SetIoAddress(IoAddress io) { io_ = std::move(io); }
  // Who may call what; set before the RPC port starts serving.
  void SetPolicy(ControlPolicy policy) { policy_ = std::move(policy); }
  // The runner's id (runner_id.h), answered by NBDR_VERSION. Set before
  // serving.
  void SetRunnerId(std::string id) { runner_id_ = std::move(id); }

  // Runs procedure proc. args and result point to the decoded argument and
  // the (zeroed) result structure of that procedure.
  void Dispatch(const RpcCaller& caller, uint32_t proc, void* args, void* result);

 private:
  void Create(const nbdr_create_args& a, nbdr_status_reply* r);
  void Import(const nbdr_create_args& a, nbdr_status_reply* r);
  void Delete(const nbdr_key_args& a, nbdr_status_reply* r);
  void Forget(const nbdr_key_args& a, nbdr_status_reply* r);
  void SetRunners(const nbdr_runners_args& a, nbdr_status_reply* r);
  void TakeOver(const MapCaller& caller, const nbdr_key_args& a, nbdr_status_reply* r);
  void Resize(const nbdr_resize_args& a, nbdr_status_reply* r);
  void Snapshot(const nbdr_snapshot_args& a, nbdr_snapshot_reply* r);  // control_snapshots.cc
  // visible_to: the identity of a client, which sees only the backstores
  // it may open; null for an admin.
  void List(const nbdr_list_args& a, const std::string* visible_to, nbdr_list_reply* r);
  // Whether caller may make this call (ControlPolicy's roles).
  Status Authorize(const RpcCaller& caller, uint32_t proc, const void* args) const;
  void Info(const nbdr_key_args& a, nbdr_info_reply* r);
  void Check(const nbdr_key_args& a, nbdr_status_reply* r);
  void Access(const nbdr_access_args& a, nbdr_access_reply* r);
  void CreateAuth(const nbdr_create_args& a, nbdr_access_reply* r);
  void Version(nbdr_version_reply* r);
  // The caller as the mapping machine sees it: the host it names, the
  // identity it proved, whether it is an admin.
  MapCaller MapCallerOf(const RpcCaller& caller, const char* host) const;
  void Map(const MapCaller& caller, const nbdr_map_args& a, nbdr_map_reply* r);
  void Mapped(const MapCaller& caller, const nbdr_mapped_args& a, nbdr_status_reply* r);
  void Unmap(const MapCaller& caller, const nbdr_unmap_args& a, nbdr_status_reply* r);
  void FillIo(nbdr_io_address* io) const;
  // Answers proc with status s and nothing else (every string set).
  void Refuse(uint32_t proc, const Status& s, void* result) const;
  // The record of a's backstore, or why there is none (handler not
  // loaded, invalid or unknown key).
  Expected<BackstoreRecord> Lookup(const nbdr_key_args& a);

  BackstoreRegistry* const registry_;
  const HandlerSet* const handlers_;
  const std::string version_;
  IoAddress io_;
  std::string runner_id_;
  ControlPolicy policy_;
};

// Allocates a copy for an XDR string field (freed by xdr_free).
char* XdrString(const std::string& s);
// Sets a reply's status and message: s's, or ok_message when s is OK (cut
// to fit NBDR_MAX_MSG).
void SetStatus(const Status& s, int* status, char** message, const std::string& ok_message);

}  // namespace nbdr
