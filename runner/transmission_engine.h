// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// TransmissionEngine: the NBD transmission phase of one connection —
// reading and validating requests, submitting them to the export's
// handler, bounding what is in flight (InflightBudget) and queueing the
// replies (ReplySender).
//
// Reader threads (readers_per_connection) take turns reading: the one
// whose turn it is reads and validates a request and submits it to the
// handler. It passes the turn on first only when another request is
// already waiting (or this one is large) and replies are not being
// coalesced, so a lone request costs no thread wake-up and a burst is
// read while earlier requests execute. A reader that finds nothing
// waiting polls briefly before it sleeps while its client keeps it busy
// (busy_poll_us), since a wake-up per request costs more than the poll.
// Small replies answered inline may wait for the next request's, to go
// out together (reply coalescing, see ReaderLoop).
//
// A connection with nothing in flight whose client sends no request for
// idle_park_ms parks: Serve returns kParked once its readers and reply
// thread have ended, and the connection waits on the server's event loop
// without a thread until the client sends again; Serve then goes on.
//
// Thread-safety: Serve() on one thread at a time; the handler's
// completion callback on any thread. Lock order: read_mu_, then the
// budget's or the sender's lock; those two are never held together.
#pragma once

#include <atomic>
#include <condition_variable>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "runner/buffer_pool.h"
#include "runner/inflight_budget.h"
#include "runner/inflight_request.h"
#include "runner/negotiated_export.h"
#include "runner/stall_watch.h"
#include "runner/nbd_server.h"
#include "runner/reply_sender.h"
#include "runner/transport.h"
#include "utils/mutex.h"
#include "utils/status.h"

namespace nbdr {

class TransmissionEngine {
 public:
  // transport, server and log_name must outlive the engine; its options,
  // payload buffers and memory budget are the server's. peer_host: the
  // client's address without its port, as accepted ("" for none, as on a
  // socketpair: then never a kernel mapping's connection).
  TransmissionEngine(Transport* transport, NegotiatedExport negotiated, NbdServer* server,
                     const std::string* log_name, std::string peer_host = {});
  ~TransmissionEngine();
  TransmissionEngine(const TransmissionEngine&) = delete;
  TransmissionEngine& operator=(const TransmissionEngine&) = delete;

  enum class Outcome { kParked, kEnded };
  // Serves requests until the client leaves, breaks the protocol, idles
  // out, or the transport's read side is shut down (kEnded), or until
  // the connection parks (kParked); returns once every request has been
  // answered (or dropped with a broken connection) and every thread it
  // started has ended.
  Outcome Serve();
  // After kParked: when the connection is closed as idle if the client
  // stays silent (idle-timeout, and never for a kernel mapping's
  // connection); time_point::max() for never.
  std::chrono::steady_clock::time_point idle_deadline() const { return idle_deadline_; }
  // Serve until the end on the calling thread, waiting instead of parking
  // (tests, fuzzing).
  void Run();
  // Whether the client ended with NBD_CMD_DISC (valid after Run).
  bool client_disconnected() const { return client_disconnected_; }
  // The backstore's export name ("file/disk.img").
  std::string export_name() const { return exp_.open->record().ExportName(); }

  // A WRITE over the maximum payload is read, dropped and refused with
  // EINVAL up to this length; beyond it the connection is closed (the
  // client is not speaking NBD sensibly).
  static constexpr uint32_t kMaxDiscardedWrite = 256u << 20;

 private:
  // What a reader does with a request once it released read_mu_.
  enum class Action { kSubmit, kReplyError, kReplyExtents, kStop, kPark };
  // One reader thread. thread: who it is, so that a reply queued on that
  // thread (answered inline) is known as the reader's.
  struct Reader {
    std::atomic<std::thread::id> thread{};
    HeldReplies held;
  };

  // Reply coalescing (see ReaderLoop): replies to reads and writes of at
  // most kMaxHeldPayload may wait; a wait that finds no request turns
  // coalescing off for kCoalesceBackoffMin requests, doubled after each
  // further miss up to kCoalesceBackoffMax.
  static constexpr uint32_t kMaxHeldPayload = 64 * 1024;
  static constexpr uint32_t kCoalesceBackoffMin = 16;
  static constexpr uint32_t kCoalesceBackoffMax = 4096;
  static constexpr uint64_t kMaxInflightRequests = 1024;
  static constexpr size_t kReadBufferSize = 256 * 1024;
  // Payloads at least this large are received straight into their own
  // buffer, not through the read buffer.
  static constexpr size_t kDirectReceiveMin = kReadBufferSize / 2;
  static constexpr uint32_t kMaxExtentsPerReply = 2048;
  // Beyond this, executing a request inline (a page-cache read or write)
  // takes long enough to read the next one meanwhile.
  static constexpr uint32_t kLargeRequest = 256 * 1024;

  void ReaderLoop(Reader* reader) EXCLUDES(read_mu_);
  // The calling thread's Reader, or null on any other thread.
  Reader* CurrentReader();
  // A read or write small enough that its reply may wait.
  static bool IsSmallIo(const nbd::RequestHeader& h);
  // Whether request h's reply may wait: coalescing is on (or tried again
  // after its backoff) and the last small request was answered inline.
  bool MayHoldReply(const nbd::RequestHeader& h, Action action, bool small_inline)
      REQUIRES(read_mu_);
  // Whether the next request is small and, its payload included, complete
  // in the read buffer, receiving what is waiting and polling up to
  // busy_poll_us; a poll that found nothing of it turns coalescing off for
  // a while.
  bool NextRequestReady() REQUIRES(read_mu_);
  // Whether to pass the reader's turn on before executing request h: more
  // is already buffered or waiting (read into the buffer without
  // blocking), or h is large.
  bool PassReadingTurn(const nbd::RequestHeader& h) REQUIRES(read_mu_);
  Action ReadRequest(Reader* reader, nbd::RequestHeader* h, uint8_t** payload, size_t* capacity,
                     int* err, const char** why) REQUIRES(read_mu_);
  // Takes an in-flight slot for a request of bytes, waiting for room;
  // first sends the replies reader holds if there is none.
  void WaitForRoom(Reader* reader, uint64_t bytes);
  // Receives until a whole request header is in rbuf_. With nothing in
  // flight after idle_park_ms, fails with EAGAIN to park the connection:
  // what came of the header stays in rbuf_, so one byte sent and then
  // nothing parks as well as silence does.
  Status FillHeader() REQUIRES(read_mu_);
  // A request's payload: own_slots are the in-flight slots the caller
  // holds for it, which do not keep an idle connection open; it must all
  // have come by deadline (PayloadDeadline: a client that stops half way
  // through a payload holds a thread and the payload's memory).
  Status ReadExact(void* buf, size_t len, uint64_t own_slots,
                   std::chrono::steady_clock::time_point deadline) REQUIRES(read_mu_);
  std::chrono::steady_clock::time_point PayloadDeadline() const;
  // The receive timeout went by with nothing from the client: OK to wait
  // on, EAGAIN to park (may_park), ETIMEDOUT when idle for idle-timeout.
  Status OnQuiet(uint64_t own_slots, bool may_park,
                 std::chrono::steady_clock::time_point* idle_since) REQUIRES(read_mu_);
  // Runs the readers and the reply thread until they stop or park.
  void RunReaders();
  // On waking from a park: whether the idle deadline passed with nothing
  // from the client (logged); the connection then ends.
  bool IdledOut() EXCLUDES(read_mu_);
  // One receive of at most cap bytes into dst, waiting for at least one;
  // polls first when busy polling pays (see busy_poll_).
  ssize_t Receive(void* dst, size_t cap) REQUIRES(read_mu_);
  Status Discard(uint64_t len, std::chrono::steady_clock::time_point deadline)
      REQUIRES(read_mu_);
  // Whether this is one of a kernel mapping's connections (see
  // BackstoreRegistry::IsMappingPeer), which idle-timeout never closes:
  // asked when the idle timeout expires, remembered once true.
  bool IsKernelMappingConnection() REQUIRES(read_mu_);
  // Fencing: whether this is a kernel mapping's connection whose client
  // may have given up what it sent: the client shut the connection down
  // (the kernel does when a request times out or the link is dead, and
  // sends the request again, possibly through another runner), or this
  // process stalled since the connection began (stall_watch.h). A write
  // still unread then may be older than one done elsewhere since, and is
  // never executed. Asked before each write-type request; costs one
  // atomic load on other connections, a poll on a mapping's.
  bool ClientGaveUp() REQUIRES(read_mu_);
  void LogFenced(const nbd::RequestHeader& h);

  // payload: a buffer from buffers_ holding the WRITE data (else null).
  void SubmitRequest(const nbd::RequestHeader& h, uint8_t* payload, size_t capacity);
  void ReplyError(const nbd::RequestHeader& h, int err, const char* why);
  void ReplyExtentsWithoutHandler(const nbd::RequestHeader& h);
  static void OnComplete(nbdr_request* req, int error);
  void Finish(InflightRequest* ir, int error);

  // Constant after construction.
  Transport* const transport_;
  const NegotiatedExport exp_;
  const NbdServerOptions& opts_;
  const std::string* const log_name_;
  BackstoreRegistry* const registry_;
  ExportStats* const stats_;  // the export's (export_stats.h)
  const std::string peer_host_;  // the client's address without its port
  std::vector<std::unique_ptr<Reader>> readers_;

  const StallWatch* const stall_watch_;  // the server's
  const uint64_t stalls_at_start_;
  // Served by a runner set: only then is a stall a reason to fence (a
  // single runner's client has nowhere else to have sent its writes).
  const bool runner_set_;
  BufferPool* const buffers_;  // the server's: payload buffers, recycled
  InflightBudget budget_;
  ReplySender sender_;

  // Reader threads take turns under read_mu_: it guards the receive
  // buffer and the transport's read side. reading_turn_taken_: some
  // thread has the turn; the others wait on read_turn_cv_ until it is
  // passed on.
  Mutex read_mu_;
  std::condition_variable read_turn_cv_;
  bool reading_turn_taken_ GUARDED_BY(read_mu_) = false;
  bool stop_reading_ GUARDED_BY(read_mu_) = false;
  bool client_disconnected_ = false;  // NBD_CMD_DISC seen; read after the readers end
  // Set by the reader that parks the connection; read after the readers
  // end. started_: Serve ran before (the "serving" line is logged once).
  bool parked_ = false;
  bool started_ = false;
  std::chrono::steady_clock::time_point idle_deadline_ = std::chrono::steady_clock::time_point::max();
  std::unique_ptr<uint8_t[]> rbuf_;
  size_t rpos_ = 0, rlen_ = 0;
  // The last request was a large write: the reader then takes no more
  // than the request in hand needs (its payload, then the next header),
  // so the next large payload is received straight into its own buffer
  // instead of partly into rbuf_ and copied from there.
  bool read_exactly_ = false;
  bool kernel_mapping_ GUARDED_BY(read_mu_) = false;
  // BackstoreRegistry::mapper_changes() when kernel_mapping_ was last
  // found false.
  uint64_t mapper_changes_seen_ GUARDED_BY(read_mu_) = UINT64_MAX;
  // Busy polling (busy_poll_us): whether the last wait for the client
  // ended within the poll budget, which is when polling before sleeping
  // pays.
  bool busy_poll_ = false;
  bool last_wait_short_ = true;
  // Reply coalescing, kept by the reader with the turn: whether replies
  // may wait now; requests to read before it may turn on again, and that
  // count for the next miss.
  bool coalescing_ GUARDED_BY(read_mu_) = false;
  uint32_t coalesce_skip_ GUARDED_BY(read_mu_) = 0;
  uint32_t coalesce_backoff_ GUARDED_BY(read_mu_) = kCoalesceBackoffMin;
};

}  // namespace nbdr
