// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// Requests at any byte offset and length, served by a handler that needs
// aligned I/O (one that declares min_block > 1).
//
// A client that negotiated no block sizes may send any offset and length
// (the NBD spec); a handler whose backend needs alignment (O_DIRECT, a
// device with 4K sectors) gets only aligned requests. RunRealigned turns
// one unaligned request into aligned ones and waits for them: reads and
// cache hints are widened to whole blocks; writes and write-zeroes read
// the partial blocks at their edges, merge, and write whole blocks back
// (read-modify-write); a trim keeps only the whole blocks it covers (a
// trim is advisory); block status is asked from the block's start and
// trimmed to the request.
//
// A read-modify-write must not interleave with another write to the same
// blocks, on any connection, or one of them is lost: it holds the
// export's WriteGate exclusively (see write_gate.h).
#pragma once

#include <cstdint>

#include "runner/buffer_pool.h"
#include "runner/inflight_request.h"
#include "runner/open_export.h"
#include "runner/write_gate.h"

namespace nbdr {

// Whether request r (an NBDR_REQ_* with its range) needs realigning for
// a handler that takes only multiples of align (export_size counts as
// aligned: it is where the handler's object ends).
bool NeedsRealigning(const nbdr_request& r, uint32_t align, uint64_t export_size);

// Whether r changes data, and must hold the export's WriteGate shared.
bool IsWriteType(const nbdr_request& r);

// Runs r through the export's handler with aligned requests only, waiting
// for each; returns 0 or the errno of the first that failed. r's range
// lies inside [0, export_size). Temporary buffers come from pool (ENOMEM
// when it has none).
int RunRealigned(const OpenExport& ex, uint32_t align, uint64_t export_size, BufferPool* pool,
                 WriteGate* gate, nbdr_request* r);

}  // namespace nbdr
