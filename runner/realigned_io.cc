// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// Unaligned requests for handlers that need alignment; see realigned_io.h.
#include "runner/realigned_io.h"

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace nbdr {

namespace {

// One handler request whose caller waits for its completion.
struct WaitedRequest : nbdr_request {
  Mutex mu;
  std::condition_variable cv;
  bool done GUARDED_BY(mu) = false;
  int error GUARDED_BY(mu) = 0;
};

void OnWaitedComplete(nbdr_request* req, int error) {
  auto* w = static_cast<WaitedRequest*>(req);
  MutexLock l(&w->mu);
  w->error = error < 0 ? -error : error;
  w->done = true;
  w->cv.notify_one();  // under the lock: the waiter frees w once it sees done
}

// The extents of a block status request, for Execute.
struct ExtentsOut {
  nbdr_extent* extents = nullptr;
  uint32_t max = 0;
  uint32_t* nr = nullptr;
};

int Execute(const OpenExport& ex, uint32_t type, uint32_t flags, uint64_t offset, uint64_t length,
            void* buf, ExtentsOut out = {}) {
  WaitedRequest w;
  w.type = type;
  w.flags = flags;
  w.offset = offset;
  w.length = length;
  w.buf = buf;
  w.extents = out.extents;
  w.max_extents = out.max;
  w.nr_extents = 0;
  w.handler_private = nullptr;
  w.complete = &OnWaitedComplete;
  ex.handler().desc().submit(ex.handle(), &w);
  MutexLock l(&w.mu);
  l.Wait(&w.cv, [&]() REQUIRES(w.mu) { return w.done; });
  if (out.nr) *out.nr = w.nr_extents;
  return w.error;
}

uint64_t AlignDown(uint64_t v, uint32_t align) { return v - v % align; }

// The end of a range aligned up, where the export's end counts as aligned.
uint64_t AlignUpWithin(uint64_t v, uint32_t align, uint64_t size) {
  return v % align ? std::min(AlignDown(v, align) + align, size) : v;
}

// A temporary buffer from the pool, given back when it goes.
class PoolBuffer {
 public:
  PoolBuffer(BufferPool* pool, size_t len) : pool_(pool) { data_ = pool->Get(len, &capacity_); }
  ~PoolBuffer() { pool_->Put(data_, capacity_); }
  PoolBuffer(const PoolBuffer&) = delete;
  PoolBuffer& operator=(const PoolBuffer&) = delete;
  uint8_t* get() const { return data_; }

 private:
  BufferPool* pool_;
  size_t capacity_ = 0;
  uint8_t* data_ = nullptr;
};

// Writes [offset, offset+length) — data, or zeroes when data is null —
// as whole blocks [lo, hi): the partial blocks at either edge are read
// first and merged.
int ReadModifyWrite(const OpenExport& ex, uint32_t align, BufferPool* pool, uint64_t lo,
                    uint64_t hi, uint64_t offset, uint64_t length, const void* data,
                    uint32_t flags) {
  PoolBuffer tmp(pool, hi - lo);
  if (!tmp.get()) return ENOMEM;
  const uint64_t end = offset + length;
  const uint64_t head_hi = std::min(lo + align, hi);
  if (offset != lo) {
    if (int e = Execute(ex, NBDR_REQ_READ, 0, lo, head_hi - lo, tmp.get())) return e;
  }
  const uint64_t tail_lo = std::max(AlignDown(end, align), lo);
  if (end != hi && (tail_lo != lo || offset == lo)) {
    if (int e = Execute(ex, NBDR_REQ_READ, 0, tail_lo, hi - tail_lo, tmp.get() + (tail_lo - lo)))
      return e;
  }
  if (data)
    memcpy(tmp.get() + (offset - lo), data, length);
  else
    memset(tmp.get() + (offset - lo), 0, length);
  return Execute(ex, NBDR_REQ_WRITE, flags & NBDR_REQ_FLAG_FUA, lo, hi - lo, tmp.get());
}

int ReadWidened(const OpenExport& ex, uint32_t align, uint64_t size, BufferPool* pool,
                nbdr_request* r) {
  const uint64_t lo = AlignDown(r->offset, align);
  const uint64_t hi = AlignUpWithin(r->offset + r->length, align, size);
  PoolBuffer tmp(pool, hi - lo);
  if (!tmp.get()) return ENOMEM;
  if (int e = Execute(ex, NBDR_REQ_READ, r->flags, lo, hi - lo, tmp.get())) return e;
  memcpy(r->buf, tmp.get() + (r->offset - lo), r->length);
  return 0;
}

// Zeroes the whole blocks inside the range with the handler's write
// zeroes, and the partial blocks at its edges by read-modify-write.
int ZeroRealigned(const OpenExport& ex, uint32_t align, uint64_t size, BufferPool* pool,
                  const nbdr_request* r) {
  const uint64_t end = r->offset + r->length;
  const uint64_t lo = AlignDown(r->offset, align);
  const uint64_t hi = AlignUpWithin(end, align, size);
  const uint64_t mid_lo = AlignUpWithin(r->offset, align, size);
  const uint64_t mid_hi = end == size ? end : AlignDown(end, align);
  if (mid_lo >= mid_hi)  // no whole block inside: at most two, rewritten
    return ReadModifyWrite(ex, align, pool, lo, hi, r->offset, r->length, nullptr, r->flags);
  if (r->offset < mid_lo) {
    if (int e = ReadModifyWrite(ex, align, pool, lo, mid_lo, r->offset, mid_lo - r->offset, nullptr,
                                r->flags))
      return e;
  }
  if (end > mid_hi) {
    if (int e =
            ReadModifyWrite(ex, align, pool, mid_hi, hi, mid_hi, end - mid_hi, nullptr, r->flags))
      return e;
  }
  return Execute(ex, NBDR_REQ_WRITE_ZEROES, r->flags, mid_lo, mid_hi - mid_lo, nullptr);
}

// A trim is advisory: only the whole blocks it covers are trimmed.
int TrimRealigned(const OpenExport& ex, uint32_t align, uint64_t size, const nbdr_request* r) {
  const uint64_t end = r->offset + r->length;
  const uint64_t lo = AlignUpWithin(r->offset, align, size);
  const uint64_t hi = end == size ? end : AlignDown(end, align);
  if (lo >= hi) return 0;
  return Execute(ex, NBDR_REQ_TRIM, r->flags, lo, hi - lo, nullptr);
}

// Block status asked from the block's start; the extents before the
// request's offset are dropped.
int ExtentsRealigned(const OpenExport& ex, uint32_t align, uint64_t size, nbdr_request* r) {
  uint64_t from = AlignDown(r->offset, align);
  const uint64_t hi = AlignUpWithin(r->offset + r->length, align, size);
  while (true) {
    uint32_t nr = 0;
    if (int e = Execute(ex, NBDR_REQ_EXTENTS, r->flags, from, hi - from, nullptr,
                        ExtentsOut{r->extents, r->max_extents, &nr}))
      return e;
    if (nr == 0 || nr > r->max_extents) return EIO;
    uint32_t i = 0;
    uint64_t skip = r->offset - from;
    while (i < nr && r->extents[i].length <= skip) skip -= r->extents[i++].length;
    if (i < nr) {
      r->extents[i].length -= skip;
      std::copy(r->extents + i, r->extents + nr, r->extents);
      r->nr_extents = nr - i;
      return 0;
    }
    // Every extent ended before the offset: ask again from where they did.
    const uint64_t reached = AlignDown(r->offset - skip, align);
    if (reached <= from) return EIO;  // no progress: the handler is broken
    from = reached;
  }
}

}  // namespace

bool NeedsRealigning(const nbdr_request& r, uint32_t align, uint64_t export_size) {
  if (align <= 1 || r.type == NBDR_REQ_FLUSH) return false;
  const uint64_t end = r.offset + r.length;
  return r.offset % align != 0 || (end % align != 0 && end != export_size);
}

bool IsWriteType(const nbdr_request& r) {
  return r.type == NBDR_REQ_WRITE || r.type == NBDR_REQ_WRITE_ZEROES || r.type == NBDR_REQ_TRIM;
}

int RunRealigned(const OpenExport& ex, uint32_t align, uint64_t size, BufferPool* pool,
                 WriteGate* gate, nbdr_request* r) {
  switch (r->type) {
    case NBDR_REQ_READ:
      return ReadWidened(ex, align, size, pool, r);
    case NBDR_REQ_WRITE: {
      gate->EnterExclusive();
      const uint64_t lo = AlignDown(r->offset, align);
      const uint64_t hi = AlignUpWithin(r->offset + r->length, align, size);
      int e = ReadModifyWrite(ex, align, pool, lo, hi, r->offset, r->length, r->buf, r->flags);
      ex.NoteWritten(lo, hi - lo);
      gate->LeaveExclusive();
      return e;
    }
    case NBDR_REQ_WRITE_ZEROES: {
      gate->EnterExclusive();
      int e = ZeroRealigned(ex, align, size, pool, r);
      ex.NoteWritten(r->offset, r->length);
      gate->LeaveExclusive();
      return e;
    }
    case NBDR_REQ_TRIM: {
      gate->EnterShared();
      int e = TrimRealigned(ex, align, size, r);
      ex.NoteWritten(r->offset, r->length);
      gate->LeaveShared();
      return e;
    }
    case NBDR_REQ_EXTENTS:
      return ExtentsRealigned(ex, align, size, r);
    default: {  // NBDR_REQ_CACHE: a hint, widened to whole blocks
      const uint64_t lo = AlignDown(r->offset, align);
      const uint64_t hi = AlignUpWithin(r->offset + r->length, align, size);
      return Execute(ex, r->type, r->flags, lo, hi - lo, nullptr);
    }
  }
}

}  // namespace nbdr
