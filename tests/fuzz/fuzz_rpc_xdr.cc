// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// Fuzz target: the XDR decoders of the control interface (rpc/nbd_rpc.x),
// the arguments the runner decodes for every procedure and the results
// nbd-cli decodes. Input: procedure number, 0 (arguments) or 1 (result),
// then the XDR body. What decodes must encode, decode again and encode to
// the same bytes (padding, booleans and NULs in strings make the first
// encoding canonical, not equal to the input), and is freed with xdr_free.
#include <rpc/rpc.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "rpc/rpc_table.h"

namespace {

// Encodes obj with fn; aborts when that fails (what decoded must encode).
std::vector<char> Encode(xdrproc_t fn, void* obj, size_t limit) {
  std::vector<char> out(limit);
  XDR enc;
  xdrmem_create(&enc, out.data(), static_cast<u_int>(out.size()), XDR_ENCODE);
  if (!fn(&enc, obj)) abort();
  out.resize(xdr_getpos(&enc));
  xdr_destroy(&enc);
  return out;
}

// Decodes bytes with fn into a fresh object of obj_size; null on failure
// (freed already).
void* Decode(xdrproc_t fn, size_t obj_size, std::vector<char>& bytes, u_int* used) {
  void* obj = calloc(1, obj_size ? obj_size : 1);
  XDR in;
  xdrmem_create(&in, bytes.data(), static_cast<u_int>(bytes.size()), XDR_DECODE);
  const bool ok = fn(&in, obj);
  *used = xdr_getpos(&in);
  xdr_destroy(&in);
  if (!ok) {
    xdr_free(fn, static_cast<char*>(obj));
    free(obj);
    return nullptr;
  }
  return obj;
}

void Free(xdrproc_t fn, void* obj) {
  xdr_free(fn, static_cast<char*>(obj));
  free(obj);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const nbdr::RpcProcedure* proc = nbdr::FindRpcProcedure(data[0]);
  if (!proc) return 0;
  const bool result = data[1] & 1;
  xdrproc_t fn = result ? proc->xdr_result : proc->xdr_args;
  const size_t obj_size = result ? proc->result_size : proc->args_size;
  std::vector<char> body(data + 2, data + size);  // xdrmem wants a char*
  u_int used = 0;
  void* obj = Decode(fn, obj_size, body, &used);
  if (!obj) return 0;
  // Never longer: a string with a NUL inside decodes as a C string, cut
  // at the NUL (the runner then validates that shorter name).
  std::vector<char> first = Encode(fn, obj, used + 8);
  Free(fn, obj);
  if (first.size() > used) abort();
  void* again = Decode(fn, obj_size, first, &used);
  if (!again) abort();  // its own encoding does not decode
  std::vector<char> second = Encode(fn, again, first.size() + 8);
  Free(fn, again);
  if (second != first) abort();
  return 0;
}
