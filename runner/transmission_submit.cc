// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// The transmission phase's request side (see transmission_engine.h): a
// validated request handed to the export's handler, its completion, and
// the replies the engine makes without the handler (refusals, extents of
// an export that reports none), and whether a connection is a kernel
// mapping's, which fencing asks before each write.
#include <cerrno>
#include <chrono>
#include <cstring>

#include "runner/realigned_io.h"
#include "runner/transmission_engine.h"
#include "utils/log.h"

namespace nbdr {

using namespace nbd;

namespace {

int64_t SteadyNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

uint32_t HandlerRequestType(uint16_t command) {
  switch (command) {
    case kCmdRead:
      return NBDR_REQ_READ;
    case kCmdWrite:
      return NBDR_REQ_WRITE;
    case kCmdFlush:
      return NBDR_REQ_FLUSH;
    case kCmdTrim:
      return NBDR_REQ_TRIM;
    case kCmdWriteZeroes:
      return NBDR_REQ_WRITE_ZEROES;
    case kCmdCache:
      return NBDR_REQ_CACHE;
    default:
      return NBDR_REQ_EXTENTS;  // kCmdBlockStatus: validated before
  }
}

}  // namespace

void TransmissionEngine::SubmitRequest(const RequestHeader& h, uint8_t* payload, size_t capacity) {
  auto* ir = new InflightRequest();
  ir->engine = this;
  ir->cookie = h.cookie;
  ir->command = h.type;
  ir->requested_length = h.length;
  ir->started_ns = SteadyNs();
  stats_->in_flight.fetch_add(1, std::memory_order_relaxed);
  ir->accounted_bytes = (h.type == kCmdRead || h.type == kCmdWrite) ? h.length : 0;
  ir->type = HandlerRequestType(h.type);
  ir->offset = h.offset;
  ir->length = h.length;
  ir->complete = &TransmissionEngine::OnComplete;
  ir->flags = 0;
  if (h.flags & kCmdFlagFua) ir->flags |= NBDR_REQ_FLAG_FUA;
  if (h.flags & kCmdFlagNoHole) ir->flags |= NBDR_REQ_FLAG_NO_HOLE;
  if (h.flags & kCmdFlagFastZero) ir->flags |= NBDR_REQ_FLAG_FAST_ZERO;
  switch (h.type) {
    case kCmdRead:
      ir->data = buffers_->Get(h.length, &ir->data_capacity);
      ir->buf = ir->data;
      if (!ir->data) {        // out of memory: this request fails, not the runner
        ir->started_ns = -1;  // the handler never saw it: not timed
        Finish(ir, ENOMEM);
        return;
      }
      break;
    case kCmdWrite:
      ir->data = payload;
      ir->data_capacity = capacity;
      ir->buf = ir->data;
      break;
    case kCmdFlush:
      ir->offset = 0;
      ir->length = 0;
      break;
    case kCmdBlockStatus:
      ir->extent_buf.resize((h.flags & kCmdFlagReqOne) ? 1 : kMaxExtentsPerReply);
      ir->extents = ir->extent_buf.data();
      ir->max_extents = static_cast<uint32_t>(ir->extent_buf.size());
      break;
  }
  if (exp_.handler_min_block > 1 && NeedsRealigning(*ir, exp_.handler_min_block, exp_.LiveSize())) {
    Finish(ir, RunRealigned(*exp_.open, exp_.handler_min_block, exp_.LiveSize(), buffers_,
                            exp_.open->write_gate(), ir));
    return;
  }
  if (IsWriteType(*ir)) {  // a snapshot holds them back (OpenExport::write_gate)
    ir->write_gate = exp_.open->write_gate();
    ir->write_gate->EnterShared();
  }
  exp_.open->handler().desc().submit(exp_.open->handle(), ir);
}

void TransmissionEngine::OnComplete(nbdr_request* req, int error) {
  auto* ir = static_cast<InflightRequest*>(req);
  ir->engine->Finish(ir, error);
}

void TransmissionEngine::Finish(InflightRequest* ir, int error) {
  if (ir->write_gate) {
    exp_.open->NoteWritten(ir->offset, ir->requested_length);
    ir->write_gate->LeaveShared();
    ir->write_gate = nullptr;
  }
  if (error < 0) error = -error;  // tolerate handlers that pass -errno
  stats_->Count(ir->command, ir->requested_length, error,
                ir->started_ns < 0 ? -1 : SteadyNs() - ir->started_ns);
  stats_->in_flight.fetch_sub(1, std::memory_order_relaxed);
  if (error) {
    LOG_DEBUG(*log_name_, "%s at %llu+%llu failed: %s", CommandName(ir->command),
              static_cast<unsigned long long>(ir->offset),
              static_cast<unsigned long long>(ir->requested_length), strerror(error));
  }
  BuildReply(ir, error, exp_);
  Reader* reader = CurrentReader();
  sender_.Queue(ir, reader ? &reader->held : nullptr);
}

void TransmissionEngine::ReplyError(const RequestHeader& h, int err, const char* why) {
  LOG_DEBUG(*log_name_, "%s (0x%x) at %llu+%u refused: %s", CommandName(h.type), h.flags,
            static_cast<unsigned long long>(h.offset), h.length, why);
  stats_->Count(h.type, h.length, err, -1);
  auto* ir = new InflightRequest();
  ir->cookie = h.cookie;
  ir->command = h.type;
  ir->offset = h.offset;
  BuildReply(ir, err, exp_);
  Reader* reader = CurrentReader();
  sender_.Queue(ir, reader ? &reader->held : nullptr);
}

void TransmissionEngine::ReplyExtentsWithoutHandler(const RequestHeader& h) {
  stats_->Count(kCmdBlockStatus, h.length, 0, -1);
  auto* ir = new InflightRequest();
  ir->cookie = h.cookie;
  ir->command = kCmdBlockStatus;
  ir->offset = h.offset;
  ir->requested_length = h.length;
  ir->extent_buf.push_back(nbdr_extent{h.length, 0, 0});
  ir->extents = ir->extent_buf.data();
  ir->nr_extents = ir->max_extents = 1;
  BuildReply(ir, 0, exp_);
  Reader* reader = CurrentReader();
  sender_.Queue(ir, reader ? &reader->held : nullptr);
}

bool TransmissionEngine::IsKernelMappingConnection() {
  if (kernel_mapping_) return true;
  kernel_mapping_ = !peer_host_.empty() && registry_->IsMappingPeer(exp_.name, peer_host_);
  if (kernel_mapping_) LOG_INFO(*log_name_, "a kernel mapping's connection: never closed as idle");
  return kernel_mapping_;
}
bool TransmissionEngine::ClientGaveUp() {
  if (!kernel_mapping_) {
    const uint64_t changes = registry_->mapper_changes();
    if (changes == mapper_changes_seen_) return false;
    mapper_changes_seen_ = changes;
    if (!IsKernelMappingConnection()) return false;
  }
  return (runner_set_ && stall_watch_->StalledSince(stalls_at_start_)) ||
         transport_->PeerShutDown();
}

void TransmissionEngine::LogFenced(const RequestHeader& h) {
  LOG_WARN(*log_name_,
           "fenced: the kernel mapping's client has shut this connection down, or this "
           "process stalled, so the client may have given up what it sent here and sent it "
           "through another runner: %s at %llu+%u and every request after it are dropped, "
           "not executed",
           CommandName(h.type), static_cast<unsigned long long>(h.offset), h.length);
}

}  // namespace nbdr
