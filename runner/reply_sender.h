// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// ReplySender: writes one connection's replies in the order they were
// queued, combining them: the thread that queues a reply while no one is
// sending becomes the sender (it holds the sender's token) and writes
// everything queued, in batches of one gather write, until the queue is
// empty; threads that queue meanwhile return at once, so a burst of
// completions costs one system call instead of one each. A sender that is
// not one of the connection's readers (a backend's completion thread,
// shared with other connections) never waits for the socket: when the
// client does not take its replies fast enough, it hands what is left to
// the connection's flusher thread and goes back to its backend.
//
// Reply coalescing: a reader may let small replies it answered inline
// wait (HeldReplies) for the next request's, to go out together.
//
// Thread-safe. Only the token's holder writes to the transport and
// touches unsent_, unsent_offset_ and send_broken_.
#pragma once

#include <chrono>
#include <condition_variable>
#include <string>
#include <thread>
#include <vector>

#include "runner/buffer_pool.h"
#include "runner/inflight_budget.h"
#include "runner/inflight_request.h"
#include "runner/transport.h"
#include "utils/mutex.h"
#include "utils/status.h"

namespace nbdr {

// One reader thread's share in reply coalescing; touched by that thread
// only (the sender is told it through Queue's reader argument).
struct HeldReplies {
  // Set by the reader while it submits a request whose reply may wait, if
  // the handler answers it inline.
  bool may_hold = false;
  // Set by Queue: the handler answered on this reader's thread.
  bool answered_inline = false;
  // Set by Queue: a reply went out at once with kMaxHeldReplies - 1 that
  // had waited for it (a full batch).
  bool batch_full = false;
  // This reader let replies wait and has not sent them since.
  bool holding = false;
};

class ReplySender {
 public:
  // At most this many replies wait for the next request's.
  static constexpr size_t kMaxHeldReplies = 8;

  // Everything passed must outlive the sender. Written replies give their
  // buffer back to buffers and their slot to budget.
  // send_timeout_s: how long the client may take to receive one reply
  // (send-timeout) before the connection is dropped and its buffers freed.
  ReplySender(Transport* transport, BufferPool* buffers, InflightBudget* budget,
              int send_timeout_s, const std::string* log_name);
  ~ReplySender();
  ReplySender(const ReplySender&) = delete;
  ReplySender& operator=(const ReplySender&) = delete;

  Status StartFlusher();
  // Ends the flusher once every reply is written (call after the budget
  // drained).
  void StopFlusher() EXCLUDES(mu_);

  // Queues ir's reply and sends it with whatever else is queued, unless
  // another thread is sending, or reader lets it wait. reader: the calling
  // thread's share when it is one of this connection's readers (it may
  // wait for the socket), null on any other thread. Frees ir and its
  // buffer once written.
  void Queue(InflightRequest* ir, HeldReplies* reader) EXCLUDES(mu_);
  // Sends the replies reader let wait, unless a sender takes them along.
  void SendHeld(HeldReplies* reader) EXCLUDES(mu_);

 private:
  // The sender's loop (the caller holds the token): writes everything
  // queued until nothing is left, or, when !may_block and the socket is
  // full, hands the token and the rest to the flusher.
  void SendQueued(bool may_block) EXCLUDES(mu_);
  // Writes unsent_; *written: how many replies at its front are now fully
  // written (or dropped, once the connection broke). False when
  // !may_block and the socket took no more.
  bool WriteUnsent(bool may_block, size_t* written);
  // Before a blocking send: bounds it by what is left of the send timeout
  // of the reply at the head; false once that passed.
  bool LeaveSendTime();
  void BreakConnection();
  void FlusherLoop() EXCLUDES(mu_);

  Transport* const transport_;
  BufferPool* const buffers_;
  InflightBudget* const budget_;
  const int send_timeout_s_;
  const std::string* const log_name_;

  Mutex mu_;
  std::condition_variable flusher_cv_;
  std::vector<InflightRequest*> queue_ GUARDED_BY(mu_);
  bool sending_ GUARDED_BY(mu_) = false;  // the sender's token is taken
  // A backend's thread found the socket full and passed the token to the
  // flusher thread.
  bool flusher_wanted_ GUARDED_BY(mu_) = false;
  bool flusher_stop_ GUARDED_BY(mu_) = false;
  std::thread flusher_;

  // The token holder's.
  std::vector<InflightRequest*> unsent_;  // taken from queue_, in order
  size_t unsent_offset_ = 0;  // bytes of unsent_.front()'s reply already written
  bool send_broken_ = false;
  // When the reply at the head of unsent_ was first sent; zero: not yet.
  std::chrono::steady_clock::time_point reply_started_{};
  bool send_timeout_narrowed_ = false;  // the socket's, for that reply
};

}  // namespace nbdr
