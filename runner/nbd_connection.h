// NbdConnection: one client connection on the NBD data port — the fixed
// newstyle handshake, then the transmission phase.
//
// Reader threads (readers_per_connection) take turns reading: the one
// whose turn it is reads and validates a request and submits it to the
// export's handler. It passes the turn on first only when another request
// is already waiting (or this one is large) and replies are not being
// coalesced, so a lone request costs no thread wake-up and a burst is
// read while earlier requests execute. A reader that finds nothing
// waiting polls the socket briefly before it sleeps while its client
// keeps it busy (busy_poll_us), since a wake-up per request costs more
// than the poll. Small replies answered inline may wait for the next
// request's, to go out together (reply coalescing, see ReaderLoop).
//
// Replies are queued by whichever thread completes a request (often the
// reader itself, inline) and written by one sender at a time, everything
// queued in one sendmsg (see QueueReply); a backend's thread never waits
// for a slow client: the connection's flusher thread takes over.
// In-flight requests are bounded in bytes and in number until their
// reply is written, so a client that floods requests or never reads
// replies is slowed down, not served from unbounded memory.
//
// Lock order: read_mu_, then mu_ or send_mu_; mu_ and send_mu_ are never
// held together.
// Every request, refusals included, holds an in-flight slot until its
// reply is written.
#pragma once

#include <chrono>
#include <condition_variable>
#include <memory>
#include <string>
#include <sys/uio.h>
#include <thread>
#include <vector>

#include "runner/backstore_registry.h"
#include "runner/buffer_pool.h"
#include "utils/nbd_protocol.h"
#include "runner/nbd_server.h"
#include "utils/mutex.h"
#include "utils/status.h"
#include "utils/unique_fd.h"

namespace nbdr {

struct InflightRequest;

class NbdConnection {
 public:
  NbdConnection(UniqueFd fd, uint64_t id, NbdServer* server);
  ~NbdConnection();
  NbdConnection(const NbdConnection&) = delete;
  NbdConnection& operator=(const NbdConnection&) = delete;

  // Runs the whole connection on the calling thread; returns when the
  // client left (or was dropped) and every request has completed.
  void Run();
  // Stops reading new requests (any thread); Run() then drains and ends.
  void Shutdown();

  const std::string& name() const { return name_; }

 private:
  // ---- handshake (connection thread only) ----
  bool Handshake();
  // Receives exactly len bytes before the handshake deadline.
  Status RecvHandshake(void* buf, size_t len);
  void LogHandshakeRecvFailure(const Status& s) const;
  Status SendOptionReply(uint32_t option, uint32_t type, const void* data, size_t len);
  Status SendOptionError(uint32_t option, uint32_t type, const std::string& message);
  bool HandleInfoOrGo(uint32_t option, const std::string& data, bool* enter_transmission);
  bool HandleMetaContext(uint32_t option, const std::string& data);
  bool HandleList(uint32_t option, const std::string& data);
  bool OpenExportForClient(const std::string& name, std::string* error, uint32_t* error_type);
  uint16_t TransmissionFlags() const;
  // Debug log of what an INFO, GO or EXPORT_NAME gives the client.
  void LogExportGiven(uint32_t option, bool base_allocation) const;

  // ---- transmission ----
  // What a reader does with a request once it released read_mu_.
  enum class Action { kSubmit, kReplyError, kReplyExtents, kStop };
  void Transmission();
  void ReaderLoop() EXCLUDES(read_mu_);
  // Whether to pass the reader's turn on before executing request h: more
  // is already buffered or waiting in the socket (read into the buffer
  // without blocking), or h is large.
  bool PassReadingTurn(const nbd::RequestHeader& h) REQUIRES(read_mu_);
  // Reply coalescing (see ReaderLoop): at most kMaxHeldReplies wait for
  // the next request's, only replies to reads and writes of at most
  // kMaxHeldPayload; a wait that finds no request turns coalescing off
  // for kCoalesceBackoffMin requests, doubled after each further miss up
  // to kCoalesceBackoffMax.
  static constexpr size_t kMaxHeldReplies = 8;
  static constexpr uint32_t kMaxHeldPayload = 64 * 1024;
  static constexpr uint32_t kCoalesceBackoffMin = 16;
  static constexpr uint32_t kCoalesceBackoffMax = 4096;
  // The backend's time to open exports that a handshake does not count:
  // up to the handshake timeout, and at least this many seconds.
  static constexpr int kMinOpenAllowanceS = 60;
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
  // Sends the replies this reader let wait, unless a sender takes them.
  void SendHeldReplies() EXCLUDES(send_mu_, mu_);
  Action ReadRequest(nbd::RequestHeader* h, uint8_t** payload, size_t* capacity, int* err,
                     const char** why) REQUIRES(read_mu_);
  // own_slots: in-flight slots the caller holds for the request it is
  // reading (its payload), which do not keep an idle connection open.
  Status ReadExact(void* buf, size_t len, uint64_t own_slots = 0);
  // Whether requests other than the caller's own_slots are in flight.
  bool InFlightBesides(uint64_t own_slots) EXCLUDES(mu_);
  // One recv of at most cap bytes into dst, waiting for at least one;
  // polls first when busy polling pays (see busy_poll_).
  ssize_t Receive(void* dst, size_t cap);
  Status Discard(uint64_t len);
  // 0 or an errno for the reply; why says what was wrong.
  int Validate(const nbd::RequestHeader& h, const char** why) const;
  // payload: a buffer from buffers_ holding the WRITE data (else null).
  void SubmitRequest(const nbd::RequestHeader& h, uint8_t* payload, size_t capacity);
  void ReplyError(const nbd::RequestHeader& h, int err, const char* why);
  void ReplyExtentsWithoutHandler(const nbd::RequestHeader& h);
  static void OnComplete(nbdr_request* req, int error);
  void Finish(InflightRequest* ir, int error);
  // Encodes ir's reply (simple or structured, data, error or extents).
  void BuildReply(InflightRequest* ir, int error);
  // Queues ir's reply; sends it and whatever else is queued unless another
  // thread is sending. Frees ir and its buffer once written.
  void QueueReply(InflightRequest* ir) EXCLUDES(send_mu_, mu_);
  // The sender's loop (the caller holds the sender's token): writes
  // everything queued until nothing is left, or, when !may_block and the
  // socket is full, hands the token and the rest to the flusher.
  void SendQueued(bool may_block) EXCLUDES(send_mu_, mu_);
  // Writes unsent_ (sender's token held); *written: how many replies at its
  // front are now fully written (or dropped, once the connection broke).
  // False when !may_block and the socket took no more.
  bool WriteUnsent(bool may_block, size_t* written);
  void ReleaseSlots(uint64_t count, uint64_t bytes) EXCLUDES(mu_);
  // The flusher thread: sends when a backend's thread handed it the token.
  void FlusherLoop() EXCLUDES(send_mu_, mu_);
  // Ends the flusher once every reply is written (after WaitForDrain).
  void StopFlusher() EXCLUDES(send_mu_);
  // Writes all of iov (the handshake thread only).
  void SendIov(struct iovec* iov, int n);
  // Takes an in-flight slot for a request of bytes, waiting for room;
  // first sends the replies this reader holds if there is none.
  void WaitForRoom(uint64_t bytes) EXCLUDES(mu_, send_mu_);
  void WaitForDrain() EXCLUDES(mu_);

  // Constant after construction.
  UniqueFd fd_;
  const uint64_t id_;
  NbdServer* const server_;
  const NbdServerOptions& opts_;
  std::string name_;  // "conn#7 127.0.0.1:40312", later with the export

  std::chrono::steady_clock::time_point handshake_deadline_;
  // How much more of the backend's time to open exports the handshake
  // deadline may still be moved by (so that a client cannot hold a
  // connection open with option after option on a slow export).
  std::chrono::steady_clock::duration open_allowance_{};

  // Negotiated during the handshake, then constant.
  bool no_zeroes_ = false;
  bool structured_ = false;
  bool base_allocation_ = false;
  std::string meta_export_;  // export named in SET_META_CONTEXT
  bool client_knows_block_size_ = false;
  std::shared_ptr<OpenExport> export_;
  uint64_t size_ = 0;
  uint32_t min_block_ = 1;
  uint32_t preferred_block_ = 4096;
  uint32_t max_payload_ = 32u << 20;
  uint32_t caps_ = 0;
  bool readonly_ = false;

  // Payload buffers, recycled between requests.
  BufferPool buffers_;

  // Reader threads take turns under read_mu_: it guards the receive
  // buffer and the socket's read side. reading_turn_taken_: some thread
  // has the turn; the others wait on read_turn_cv_ until it is passed on.
  Mutex read_mu_;
  std::condition_variable read_turn_cv_;
  bool reading_turn_taken_ GUARDED_BY(read_mu_) = false;
  bool stop_reading_ GUARDED_BY(read_mu_) = false;
  bool client_disconnected_ = false;  // NBD_CMD_DISC seen; read after the readers end
  std::unique_ptr<uint8_t[]> rbuf_;
  size_t rpos_ = 0, rlen_ = 0;
  // The last request was a large write: the reader then takes no more
  // from the socket than the request in hand needs (its payload, then the
  // next header), so the next large payload is received straight into its
  // own buffer instead of partly into rbuf_ and copied from there.
  bool read_exactly_ = false;
  // Busy polling (options busy_poll_us), transmission only: whether the
  // last wait for the client ended within the poll budget, which is when
  // polling before sleeping pays.
  bool busy_poll_ = false;
  bool last_wait_short_ = true;
  // Reply coalescing (see ReaderLoop), kept by the reader with the turn:
  // whether replies may wait now; requests to read before it may turn on
  // again, and that count for the next miss.
  bool coalescing_ GUARDED_BY(read_mu_) = false;
  uint32_t coalesce_skip_ GUARDED_BY(read_mu_) = 0;
  uint32_t coalesce_backoff_ GUARDED_BY(read_mu_) = kCoalesceBackoffMin;

  // Replies waiting for the sender; sending_ is the sender's token. Only
  // the token's holder (or the handshake thread, before transmission)
  // writes to the socket and touches unsent_, unsent_offset_ and
  // send_broken_. flusher_wanted_: a backend's thread found the socket
  // full and passed the token to the flusher thread.
  Mutex send_mu_;
  std::condition_variable flusher_cv_;
  std::vector<InflightRequest*> send_queue_ GUARDED_BY(send_mu_);
  bool sending_ GUARDED_BY(send_mu_) = false;
  bool flusher_wanted_ GUARDED_BY(send_mu_) = false;
  bool flusher_stop_ GUARDED_BY(send_mu_) = false;
  std::vector<InflightRequest*> unsent_;  // taken from send_queue_, in order
  size_t unsent_offset_ = 0;  // bytes of unsent_.front()'s reply already written
  bool send_broken_ = false;
  std::thread flusher_;

  Mutex mu_;
  std::condition_variable cv_;
  uint64_t inflight_count_ GUARDED_BY(mu_) = 0;
  uint64_t inflight_bytes_ GUARDED_BY(mu_) = 0;
};

}  // namespace nbdr
