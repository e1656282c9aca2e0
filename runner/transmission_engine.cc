// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// The NBD transmission phase of one connection; see transmission_engine.h
// and doc/proto.md of the NetworkBlockDevice project.
#include "runner/transmission_engine.h"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <system_error>

#include "utils/log.h"

namespace nbdr {

using namespace nbd;

TransmissionEngine::TransmissionEngine(Transport* transport, NegotiatedExport negotiated,
                                       NbdServer* server, const std::string* log_name,
                                       std::string peer_host)
    : transport_(transport),
      exp_(std::move(negotiated)),
      opts_(server->options()),
      log_name_(log_name),
      registry_(server->registry()),
      stats_(exp_.open->stats()),
      peer_host_(std::move(peer_host)),
      stall_watch_(&server->stall_watch()),
      stalls_at_start_(stall_watch_->stalls()),
      runner_set_(registry_->HasRunnerSet(exp_.name)),
      buffers_(server->buffers()),
      budget_(opts_.max_inflight_bytes, kMaxInflightRequests, server->memory()),
      sender_(transport, buffers_, &budget_, opts_.send_timeout_s, log_name),
      rbuf_(new uint8_t[kReadBufferSize]) {
  for (int i = 0; i < std::max(1, opts_.readers_per_connection); i++)
    readers_.push_back(std::make_unique<Reader>());
  stats_->connections.fetch_add(1, std::memory_order_relaxed);
  stats_->connections_total.fetch_add(1, std::memory_order_relaxed);
}

TransmissionEngine::~TransmissionEngine() {
  stats_->connections.fetch_sub(1, std::memory_order_relaxed);
}

TransmissionEngine::Outcome TransmissionEngine::Serve() {
  if (!started_) {
    started_ = true;
    LOG_INFO(*log_name_, "serving (%s%s%s)",
             exp_.structured ? "structured replies" : "simple replies",
             exp_.base_allocation ? ", base:allocation" : "", exp_.readonly ? ", read-only" : "");
    // Parking on: each wait for a request ends after idle_park_ms, to park
    // or to count towards the idle timeout (see ReadExact).
    if (opts_.idle_park_ms > 0)
      transport_->SetRecvTimeout(std::chrono::milliseconds(opts_.idle_park_ms));
    else
      transport_->SetRecvTimeout(std::chrono::seconds(opts_.idle_timeout_s));
    transport_->SetSendTimeout(std::chrono::seconds(opts_.send_timeout_s));
    busy_poll_ = opts_.busy_poll_us > 0;
  } else if (parked_) {
    // Woken by the client or by the park's timer. The timer may ring a
    // few milliseconds early (libevent keeps a coarse clock): with nothing
    // to read before the deadline, park again with the same deadline
    // rather than wait a new idle timeout.
    if (!transport_->WaitReadable(std::chrono::milliseconds(0)) &&
        std::chrono::steady_clock::now() < idle_deadline_)
      return Outcome::kParked;
    parked_ = false;
    if (IdledOut()) return Outcome::kEnded;
  }
  {
    MutexLock rl(&read_mu_);
    stop_reading_ = reading_turn_taken_ = false;
  }
  RunReaders();
  if (!parked_) return Outcome::kEnded;
  {
    MutexLock rl(&read_mu_);
    idle_deadline_ = std::chrono::steady_clock::time_point::max();
    // A kernel mapping's connection is recognised here, at its first
    // quiet second, so its park has no deadline at all.
    if (opts_.idle_timeout_s > 0 && !IsKernelMappingConnection()) {
      // The reader already waited idle_park_ms of the idle timeout.
      idle_deadline_ = std::chrono::steady_clock::now() +
                       std::chrono::seconds(opts_.idle_timeout_s) -
                       std::chrono::milliseconds(opts_.idle_park_ms);
    }
  }
  return Outcome::kParked;
}

bool TransmissionEngine::IdledOut() {
  if (std::chrono::steady_clock::now() < idle_deadline_) return false;
  if (transport_->WaitReadable(std::chrono::milliseconds(0))) return false;
  MutexLock rl(&read_mu_);
  if (IsKernelMappingConnection()) return false;
  LOG_WARN(*log_name_, "idle for %d s; closing", opts_.idle_timeout_s);
  return true;
}

void TransmissionEngine::Run() {
  while (Serve() == Outcome::kParked) {
    const auto left = idle_deadline_ - std::chrono::steady_clock::now();
    transport_->WaitReadable(idle_deadline_ == std::chrono::steady_clock::time_point::max()
                                 ? std::chrono::hours(24)
                                 : std::max(std::chrono::milliseconds(0),
                                            std::chrono::ceil<std::chrono::milliseconds>(left)));
  }
}

void TransmissionEngine::RunReaders() {
  // Leader/follower: the reader threads take turns reading; a request
  // whose handler completes inline is executed and answered by its reader
  // while, if more requests are waiting, another reader takes the next.
  if (Status s = sender_.StartFlusher(); !s.ok()) {
    // Out of threads (a pids limit): this connection ends, the others go on.
    LOG_WARN(*log_name_, "%s; closing the connection", s.message().c_str());
    return;
  }
  std::vector<std::thread> helpers;
  for (size_t i = 1; i < readers_.size(); i++) {
    try {
      helpers.emplace_back([this, r = readers_[i].get()] { ReaderLoop(r); });
    } catch (const std::system_error& e) {
      LOG_WARN(*log_name_, "serving with %zu reader thread(s), not %zu: %s", i,
               readers_.size(), e.what());
      break;
    }
  }
  ReaderLoop(readers_[0].get());
  for (auto& t : helpers) t.join();
  budget_.WaitForDrain();
  sender_.StopFlusher();
}

TransmissionEngine::Reader* TransmissionEngine::CurrentReader() {
  const auto self = std::this_thread::get_id();
  for (auto& r : readers_)
    if (r->thread.load(std::memory_order_relaxed) == self) return r.get();
  return nullptr;
}

// Reply coalescing: while the client keeps many requests in flight, a
// reader that answered a small read or write inline lets the reply wait
// (up to ReplySender::kMaxHeldReplies) if the next request is already
// complete in the read buffer, or arrives within the busy-poll budget,
// and sends the waiting replies in one gather write with the last. The
// client then takes several replies per wake-up and per TCP segment,
// which is where its CPU goes on a fast backend. A reader that holds
// replies keeps the reading turn and never blocks before sending them:
// not in receive (the next request is all there), not for room
// (WaitForRoom), not at the end of the stream. Coalescing is tried, and a
// wait that finds no request turns it off for kCoalesceBackoffMin
// requests, doubled after each further miss up to kCoalesceBackoffMax and
// back to the least only after a full batch: a client with one or two
// requests in flight pays one busy-poll wait every few thousand requests.
// Replies a backend completes on its own threads never wait.
void TransmissionEngine::ReaderLoop(Reader* reader) {
  reader->thread.store(std::this_thread::get_id(), std::memory_order_relaxed);
  HeldReplies& held = reader->held;
  bool my_turn = false;
  bool small_inline = true;  // the last small read or write was answered inline
  for (;;) {
    RequestHeader h;
    Action action;
    uint8_t* payload = nullptr;
    size_t capacity = 0;
    const char* why = "";
    int err = 0;
    bool may_hold = false;
    {
      MutexLock rl(&read_mu_);
      if (!my_turn) {
        rl.Wait(&read_turn_cv_, [this]() REQUIRES(read_mu_) {
          return !reading_turn_taken_ || stop_reading_;
        });
        if (stop_reading_) break;
        reading_turn_taken_ = my_turn = true;
      }
      action = ReadRequest(reader, &h, &payload, &capacity, &err, &why);
      if (action == Action::kPark) parked_ = true;
      if (action == Action::kStop || action == Action::kPark) {
        stop_reading_ = true;
        read_turn_cv_.notify_all();
      } else {
        may_hold = MayHoldReply(h, action, small_inline);
        if (!may_hold && PassReadingTurn(h)) {
          reading_turn_taken_ = my_turn = false;
          read_turn_cv_.notify_one();
        }
      }
    }
    // A request whose reply does not wait may take long (a large read
    // executed inline): the replies held so far go first.
    if (!may_hold && held.holding) sender_.SendHeld(&held);
    held.may_hold = may_hold;
    held.answered_inline = false;
    switch (action) {
      case Action::kSubmit: SubmitRequest(h, payload, capacity); break;
      case Action::kReplyError: ReplyError(h, err, why); break;
      case Action::kReplyExtents: ReplyExtentsWithoutHandler(h); break;
      case Action::kStop:
      case Action::kPark: break;
    }
    held.may_hold = false;
    if (action == Action::kSubmit && IsSmallIo(h)) small_inline = held.answered_inline;
    bool keep_holding = false;
    if (may_hold && (held.holding || held.batch_full)) {
      MutexLock rl(&read_mu_);
      if (held.batch_full) coalesce_backoff_ = kCoalesceBackoffMin;  // coalescing pays
      keep_holding = held.holding && NextRequestReady();
    }
    held.batch_full = false;
    if (held.holding && !keep_holding) sender_.SendHeld(&held);
    if (action == Action::kStop || action == Action::kPark) break;
  }
  // From here on, this thread's replies are a backend's.
  reader->thread.store(std::thread::id(), std::memory_order_relaxed);
}

bool TransmissionEngine::IsSmallIo(const RequestHeader& h) {
  return (h.type == kCmdRead || h.type == kCmdWrite) && h.length <= kMaxHeldPayload;
}

bool TransmissionEngine::MayHoldReply(const RequestHeader& h, Action action, bool small_inline) {
  if (coalesce_skip_ > 0) {
    coalesce_skip_--;
  } else if (opts_.busy_poll_us > 0) {
    coalescing_ = true;
  }
  return coalescing_ && small_inline && action == Action::kSubmit && IsSmallIo(h);
}

bool TransmissionEngine::NextRequestReady() {
  // (read_exactly_ is false here: the request just executed was small.)
  using Clock = std::chrono::steady_clock;
  const auto deadline = Clock::now() + std::chrono::microseconds(opts_.busy_poll_us);
  for (;;) {
    size_t have = rlen_ - rpos_;
    if (have >= kRequestHeaderSize) {
      RequestHeader next = DecodeRequestHeader(rbuf_.get() + rpos_);
      // A request whose reply would not wait is not waited for either.
      if (!IsSmallIo(next)) return false;
      size_t need = kRequestHeaderSize;
      if (next.type == kCmdWrite) need += next.length;
      if (have >= need) return true;
    }
    if (rpos_ > 0) {
      memmove(rbuf_.get(), rbuf_.get() + rpos_, have);
      rpos_ = 0;
      rlen_ = have;
    }
    ssize_t n = transport_->Recv(rbuf_.get() + rlen_, kReadBufferSize - rlen_,
                                 Transport::Wait::kNoWait);
    if (n > 0) {
      rlen_ += static_cast<size_t>(n);
      continue;
    }
    // End of stream or an error: the next read finds it.
    if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) return false;
    if (Clock::now() >= deadline) {
      // Part of the next request is here: the client is busy, not done.
      if (have > 0) return false;
      coalescing_ = false;
      coalesce_skip_ = coalesce_backoff_;
      coalesce_backoff_ = std::min(coalesce_backoff_ * 2, kCoalesceBackoffMax);
      last_wait_short_ = false;  // this was the poll; the next read sleeps at once
      return false;
    }
  }
}

bool TransmissionEngine::PassReadingTurn(const RequestHeader& h) {
  if (readers_.size() < 2) return false;
  if (rpos_ < rlen_) return true;
  if ((h.type == kCmdRead || h.type == kCmdWrite) && h.length >= kLargeRequest) return true;
  ssize_t n = transport_->Recv(rbuf_.get(), read_exactly_ ? kRequestHeaderSize : kReadBufferSize,
                               Transport::Wait::kNoWait);
  if (n > 0) {
    rpos_ = 0;
    rlen_ = static_cast<size_t>(n);
    return true;
  }
  // End of stream or an error: the next reader finds it and stops.
  return n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

TransmissionEngine::Action TransmissionEngine::ReadRequest(Reader* reader, RequestHeader* hp,
                                                           uint8_t** payload, size_t* capacity,
                                                           int* err, const char** why) {
  RequestHeader& h = *hp;
  if (Status s = FillHeader(); !s.ok()) {
    if (s.code() == EAGAIN) return Action::kPark;
    if (s.code() == ETIMEDOUT)
      LOG_WARN(*log_name_, "idle for %d s; closing", opts_.idle_timeout_s);
    else if (s.code() != ECONNRESET)
      LOG_WARN(*log_name_, "%s", s.message().c_str());
    else
      LOG_DEBUG(*log_name_, "client closed the connection");
    return Action::kStop;
  }
  h = DecodeRequestHeader(rbuf_.get() + rpos_);
  rpos_ += kRequestHeaderSize;
  read_exactly_ = h.type == kCmdWrite && h.length >= kDirectReceiveMin;
  if (h.magic != kRequestMagic) {
    LOG_WARN(*log_name_, "bad request magic 0x%08x; closing", h.magic);
    return Action::kStop;
  }
  if (h.type == kCmdDisc) {
    LOG_DEBUG(*log_name_, "client sent NBD_CMD_DISC");
    client_disconnected_ = true;
    return Action::kStop;
  }
  *err = ValidateRequest(h, exp_, why);
  if (h.type == kCmdWrite) {
    if (h.length > kMaxDiscardedWrite) {
      LOG_WARN(*log_name_, "write of %u bytes is far beyond the %u byte maximum payload; closing",
               h.length, exp_.max_payload);
      return Action::kStop;
    }
    if (*err) {
      // Refused (too large, out of range, ...): its payload is read and
      // dropped, so the connection stays in step and usable.
      if (!Discard(h.length, PayloadDeadline()).ok()) return Action::kStop;
      WaitForRoom(reader, 0);  // a refusal holds a slot too, until it is sent
      return Action::kReplyError;
    }
    WaitForRoom(reader, h.length);
    *payload = buffers_->Get(h.length, capacity);
    if (!*payload) {
      budget_.Release(0, h.length);  // the slot stays, for the refusal
      if (!Discard(h.length, PayloadDeadline()).ok()) return Action::kStop;
      *err = ENOMEM;
      *why = "out of memory for its payload";
      return Action::kReplyError;
    }
    if (Status s = ReadExact(*payload, h.length, /*own_slots=*/1, PayloadDeadline()); !s.ok()) {
      buffers_->Put(*payload, *capacity);
      LOG_WARN(*log_name_, "write payload: %s", s.message().c_str());
      budget_.Release(1, h.length);  // room was reserved: give it back
      return Action::kStop;
    }
    if (ClientGaveUp()) {
      buffers_->Put(*payload, *capacity);
      budget_.Release(1, h.length);
      LogFenced(h);
      return Action::kStop;
    }
    return Action::kSubmit;
  }
  // Refusals hold a slot until sent, like any request: a client that
  // sends junk and never reads the answers is slowed down the same way.
  WaitForRoom(reader, !*err && h.type == kCmdRead ? h.length : 0);
  if (*err) return Action::kReplyError;
  // (After the wait for room, which a slow backend can make long.)
  if ((h.type == kCmdTrim || h.type == kCmdWriteZeroes) && ClientGaveUp()) {
    budget_.Release(1, 0);
    LogFenced(h);
    return Action::kStop;
  }
  if (h.type == kCmdBlockStatus && !(exp_.caps & NBDR_CAP_EXTENTS)) return Action::kReplyExtents;
  return Action::kSubmit;
}

void TransmissionEngine::WaitForRoom(Reader* reader, uint64_t bytes) {
  // Replies this reader holds keep their slots until sent: send them
  // (under read_mu_; only readers waiting for the turn wait meanwhile)
  // rather than wait for room they would give back.
  if (reader->held.holding && !budget_.HasRoom(bytes)) sender_.SendHeld(&reader->held);
  budget_.Take(bytes);
}

std::chrono::steady_clock::time_point TransmissionEngine::PayloadDeadline() const {
  return std::chrono::steady_clock::now() + std::chrono::seconds(opts_.send_timeout_s);
}

Status TransmissionEngine::OnQuiet(uint64_t own_slots, bool may_park,
                                   std::chrono::steady_clock::time_point* idle_since) {
  using Clock = std::chrono::steady_clock;
  // The idle timeout counts only while nothing is in flight: a client
  // waiting for a slow request's reply is not idle.
  if (budget_.InFlightBesides(own_slots)) {
    *idle_since = {};
    return Status();
  }
  if (may_park) return Status::Error(EAGAIN, "nothing to do: parking");
  if (IsKernelMappingConnection()) return Status();
  const auto now = Clock::now();
  const auto waited = opts_.idle_park_ms > 0
                          ? std::chrono::milliseconds(opts_.idle_park_ms)
                          : std::chrono::milliseconds(opts_.idle_timeout_s * 1000LL);
  if (*idle_since == Clock::time_point{}) *idle_since = now - waited;
  if (opts_.idle_timeout_s > 0 && now - *idle_since >= std::chrono::seconds(opts_.idle_timeout_s))
    return Status::Error(ETIMEDOUT, "idle");
  return Status();
}

Status TransmissionEngine::FillHeader() {
  // Since when nothing has come while nothing was in flight ({}: not idle).
  std::chrono::steady_clock::time_point idle_since{};
  while (rlen_ - rpos_ < kRequestHeaderSize) {
    const size_t have = rlen_ - rpos_;
    if (rpos_ > 0) {
      memmove(rbuf_.get(), rbuf_.get() + rpos_, have);
      rpos_ = 0;
      rlen_ = have;
    }
    // After a large write, no more than the header (see read_exactly_).
    const size_t cap = read_exactly_ ? kRequestHeaderSize - have : kReadBufferSize - have;
    ssize_t n = Receive(rbuf_.get() + rlen_, cap);
    if (n > 0) {
      rlen_ += static_cast<size_t>(n);
      idle_since = {};
      continue;
    }
    if (n == 0) return Status::Error(ECONNRESET, "connection closed by client");
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) return PosixError("recv");
    // The receive timeout: idle_park_ms (or idle-timeout without parking).
    if (Status s = OnQuiet(0, opts_.idle_park_ms > 0, &idle_since); !s.ok()) return s;
  }
  return Status();
}

Status TransmissionEngine::ReadExact(void* buf, size_t len, uint64_t own_slots,
                                     std::chrono::steady_clock::time_point deadline) {
  auto* out = static_cast<uint8_t*>(buf);
  std::chrono::steady_clock::time_point idle_since{};
  while (len > 0) {
    if (rpos_ < rlen_) {
      size_t n = std::min(len, rlen_ - rpos_);
      memcpy(out, rbuf_.get() + rpos_, n);
      rpos_ += n;
      out += n;
      len -= n;
      continue;
    }
    if (std::chrono::steady_clock::now() >= deadline)
      return Status::Error(ETIMEDOUT, "not received within send-timeout (" +
                                          std::to_string(opts_.send_timeout_s) + " s)");
    // Large payloads go straight to their destination; after a large
    // write, so does the next request's header (see read_exactly_).
    const bool direct = len >= kDirectReceiveMin;
    uint8_t* dst = direct ? out : rbuf_.get();
    size_t cap = direct || read_exactly_ ? len : kReadBufferSize;
    ssize_t n = Receive(dst, cap);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) return PosixError("recv");
      if (Status s = OnQuiet(own_slots, /*may_park=*/false, &idle_since); !s.ok()) return s;
      continue;
    }
    idle_since = {};
    if (n == 0) return Status::Error(ECONNRESET, "connection closed by client");
    if (dst == out) {
      out += n;
      len -= static_cast<size_t>(n);
    } else {
      rpos_ = 0;
      rlen_ = static_cast<size_t>(n);
    }
  }
  return Status();
}

ssize_t TransmissionEngine::Receive(void* dst, size_t cap) {
  if (!busy_poll_) return transport_->Recv(dst, cap, Transport::Wait::kBlock);
  using Clock = std::chrono::steady_clock;
  const auto budget = std::chrono::microseconds(opts_.busy_poll_us);
  const auto start = Clock::now();
  ssize_t n = -1;
  if (last_wait_short_) {
    do {
      n = transport_->Recv(dst, cap, Transport::Wait::kNoWait);
    } while (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) && Clock::now() - start < budget);
    if (n >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
      last_wait_short_ = true;
      return n;
    }
  }
  n = transport_->Recv(dst, cap, Transport::Wait::kBlock);
  last_wait_short_ = Clock::now() - start < budget;
  return n;
}

Status TransmissionEngine::Discard(uint64_t len, std::chrono::steady_clock::time_point deadline) {
  uint8_t scratch[65536];
  while (len > 0) {
    size_t n = static_cast<size_t>(std::min<uint64_t>(len, sizeof scratch));
    if (Status s = ReadExact(scratch, n, 0, deadline); !s.ok()) return s;
    len -= n;
  }
  return Status();
}

}  // namespace nbdr
