// NbdConnection: one client connection on the NBD data port — the fixed
// newstyle handshake, then the transmission phase.
//
// Reader threads (readers_per_connection) take turns reading: the one
// whose turn it is reads and validates a request and submits it to the
// export's handler; it passes the turn on first only when another request
// is already waiting (or this one is large), so a lone request costs no
// thread wake-up and a burst is read while earlier requests execute; a
// reader that finds nothing waiting polls the socket briefly before it
// sleeps while its client keeps it busy (busy_poll_us), since a wake-up
// per request costs more than the poll;
// replies are queued by whichever thread completes a request (often the
// reader itself, inline) and written by one sender at a time, everything
// queued in one sendmsg (see QueueReply). In-flight requests are bounded in
// bytes and in number until their reply is written, so a client that floods
// requests or never reads replies is slowed down, not served from
// unbounded memory.
//
// Lock order: read_mu_, then mu_; send_mu_ is never held with another.
#pragma once

#include <condition_variable>
#include <memory>
#include <string>
#include <sys/uio.h>
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
  Status RecvHandshake(void* buf, size_t len);
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
  Action ReadRequest(nbd::RequestHeader* h, uint8_t** payload, size_t* capacity, int* err,
                     const char** why) REQUIRES(read_mu_);
  Status ReadExact(void* buf, size_t len);
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
  void WriteReplies(const std::vector<InflightRequest*>& batch);
  // Writes all of iov (the handshake thread, or the reply sender).
  void SendIov(struct iovec* iov, int n);
  void WaitForRoom(uint64_t bytes) EXCLUDES(mu_);
  void WaitForDrain() EXCLUDES(mu_);

  // Constant after construction.
  UniqueFd fd_;
  const uint64_t id_;
  NbdServer* const server_;
  const NbdServerOptions& opts_;
  std::string name_;  // "conn#7 127.0.0.1:40312", later with the export

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

  // Replies waiting for the sender; sending_ is the sender's token. Only
  // the token's holder (or the handshake thread, before transmission)
  // writes to the socket and touches send_broken_.
  Mutex send_mu_;
  std::vector<InflightRequest*> send_queue_ GUARDED_BY(send_mu_);
  bool sending_ GUARDED_BY(send_mu_) = false;
  bool send_broken_ = false;

  Mutex mu_;
  std::condition_variable cv_;
  uint64_t inflight_count_ GUARDED_BY(mu_) = 0;
  uint64_t inflight_bytes_ GUARDED_BY(mu_) = 0;
};

}  // namespace nbdr
