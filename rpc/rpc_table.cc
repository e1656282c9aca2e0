// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// Procedure table of the control interface; see rpc_table.h.
#include "rpc/rpc_table.h"

namespace nbdr {

namespace {

xdrproc_t Void() { return reinterpret_cast<xdrproc_t>(reinterpret_cast<void (*)(void)>(xdr_void)); }

const RpcProcedure kProcedures[] = {
    {NBDR_NULL, "null", Void(), 0, Void(), 0},
    {NBDR_CREATE, "create", XdrProc(xdr_nbdr_create_args), sizeof(nbdr_create_args),
     XdrProc(xdr_nbdr_status_reply), sizeof(nbdr_status_reply)},
    {NBDR_DELETE, "delete", XdrProc(xdr_nbdr_key_args), sizeof(nbdr_key_args),
     XdrProc(xdr_nbdr_status_reply), sizeof(nbdr_status_reply)},
    {NBDR_LIST, "list", XdrProc(xdr_nbdr_list_args), sizeof(nbdr_list_args),
     XdrProc(xdr_nbdr_list_reply), sizeof(nbdr_list_reply)},
    {NBDR_INFO, "info", XdrProc(xdr_nbdr_key_args), sizeof(nbdr_key_args),
     XdrProc(xdr_nbdr_info_reply), sizeof(nbdr_info_reply)},
    {NBDR_MAP, "map", XdrProc(xdr_nbdr_map_args), sizeof(nbdr_map_args),
     XdrProc(xdr_nbdr_map_reply), sizeof(nbdr_map_reply)},
    {NBDR_MAPPED, "mapped", XdrProc(xdr_nbdr_mapped_args), sizeof(nbdr_mapped_args),
     XdrProc(xdr_nbdr_status_reply), sizeof(nbdr_status_reply)},
    {NBDR_UNMAP, "unmap", XdrProc(xdr_nbdr_unmap_args), sizeof(nbdr_unmap_args),
     XdrProc(xdr_nbdr_status_reply), sizeof(nbdr_status_reply)},
    {NBDR_FORGET, "forget", XdrProc(xdr_nbdr_key_args), sizeof(nbdr_key_args),
     XdrProc(xdr_nbdr_status_reply), sizeof(nbdr_status_reply)},
    {NBDR_SET_RUNNERS, "set-runners", XdrProc(xdr_nbdr_runners_args), sizeof(nbdr_runners_args),
     XdrProc(xdr_nbdr_status_reply), sizeof(nbdr_status_reply)},
    {NBDR_RESIZE, "resize", XdrProc(xdr_nbdr_resize_args), sizeof(nbdr_resize_args),
     XdrProc(xdr_nbdr_status_reply), sizeof(nbdr_status_reply)},
    {NBDR_SNAPSHOT, "snapshot", XdrProc(xdr_nbdr_snapshot_args), sizeof(nbdr_snapshot_args),
     XdrProc(xdr_nbdr_snapshot_reply), sizeof(nbdr_snapshot_reply)},
    {NBDR_TAKE_OVER, "take-over", XdrProc(xdr_nbdr_key_args), sizeof(nbdr_key_args),
     XdrProc(xdr_nbdr_status_reply), sizeof(nbdr_status_reply)},
    {NBDR_IMPORT, "import", XdrProc(xdr_nbdr_create_args), sizeof(nbdr_create_args),
     XdrProc(xdr_nbdr_status_reply), sizeof(nbdr_status_reply)},
    {NBDR_CHECK, "check", XdrProc(xdr_nbdr_key_args), sizeof(nbdr_key_args),
     XdrProc(xdr_nbdr_status_reply), sizeof(nbdr_status_reply)},
    {NBDR_ACCESS, "access", XdrProc(xdr_nbdr_access_args), sizeof(nbdr_access_args),
     XdrProc(xdr_nbdr_access_reply), sizeof(nbdr_access_reply)},
    {NBDR_CREATE_AUTH, "create-auth", XdrProc(xdr_nbdr_create_args), sizeof(nbdr_create_args),
     XdrProc(xdr_nbdr_access_reply), sizeof(nbdr_access_reply)},
    {NBDR_VERSION, "version", Void(), 0, XdrProc(xdr_nbdr_version_reply),
     sizeof(nbdr_version_reply)},
};

}  // namespace

const RpcProcedure* FindRpcProcedure(uint32_t number) {
  for (const auto& p : kProcedures)
    if (p.number == number) return &p;
  return nullptr;
}

namespace {
template <typename Reply>
RpcReplyHead HeadOf(void* result) {
  auto* r = static_cast<Reply*>(result);
  return {&r->status, &r->message};
}
}  // namespace

RpcReplyHead ReplyHeadOf(uint32_t number, void* result) {
  switch (number) {
    case NBDR_CREATE:
    case NBDR_DELETE:
    case NBDR_FORGET:
    case NBDR_SET_RUNNERS:
    case NBDR_TAKE_OVER:
    case NBDR_RESIZE:
    case NBDR_MAPPED:
    case NBDR_UNMAP:
    case NBDR_IMPORT:
    case NBDR_CHECK:
      return HeadOf<nbdr_status_reply>(result);
    case NBDR_LIST: return HeadOf<nbdr_list_reply>(result);
    case NBDR_INFO: return HeadOf<nbdr_info_reply>(result);
    case NBDR_MAP: return HeadOf<nbdr_map_reply>(result);
    case NBDR_VERSION: return HeadOf<nbdr_version_reply>(result);
    case NBDR_SNAPSHOT: return HeadOf<nbdr_snapshot_reply>(result);
    case NBDR_ACCESS:
    case NBDR_CREATE_AUTH:
      return HeadOf<nbdr_access_reply>(result);
    default: return {};
  }
}

}  // namespace nbdr
