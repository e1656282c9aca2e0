// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// The control procedures of rpc/nbd_rpc.x as data: for each procedure
// number, the XDR routines and sizes of its argument and result. Used by
// the runner's RPC server to decode calls and by nbd-cli to make them.
// Immutable, thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>

#include "nbd_rpc.h"

namespace nbdr {

// Casts a typed XDR routine (bool_t (*)(XDR*, T*)) to xdrproc_t.
template <typename T>
xdrproc_t XdrProc(bool_t (*fn)(XDR*, T*)) {
  return reinterpret_cast<xdrproc_t>(reinterpret_cast<void (*)(void)>(fn));
}

struct RpcProcedure {
  uint32_t number;
  const char* name;
  xdrproc_t xdr_args;
  size_t args_size;
  xdrproc_t xdr_result;
  size_t result_size;
};

// The procedure with this number, or nullptr when there is none.
const RpcProcedure* FindRpcProcedure(uint32_t number);

// The status and message every reply of the program starts with, in the
// (decoded or to be encoded) result of procedure number; null for a
// procedure without a result (NBDR_NULL) or an unknown one.
struct RpcReplyHead {
  int* status = nullptr;
  char** message = nullptr;
};
RpcReplyHead ReplyHeadOf(uint32_t number, void* result);

}  // namespace nbdr
