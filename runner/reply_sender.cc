// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// Writing a connection's replies; see reply_sender.h.
#include "runner/reply_sender.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <system_error>

#include "utils/log.h"

namespace nbdr {

ReplySender::ReplySender(Transport* transport, BufferPool* buffers, InflightBudget* budget,
                         int send_timeout_s, const std::string* log_name)
    : transport_(transport),
      buffers_(buffers),
      budget_(budget),
      send_timeout_s_(send_timeout_s),
      log_name_(log_name) {}

ReplySender::~ReplySender() { StopFlusher(); }

Status ReplySender::StartFlusher() {
  {
    MutexLock l(&mu_);
    flusher_stop_ = false;  // started again after a park
  }
  try {
    flusher_ = std::thread([this] { FlusherLoop(); });
  } catch (const std::system_error& e) {
    return Status::Error(EAGAIN, std::string("cannot start the reply thread: ") + e.what());
  }
  return Status();
}

void ReplySender::StopFlusher() {
  if (!flusher_.joinable()) return;
  {
    MutexLock l(&mu_);
    flusher_stop_ = true;
    flusher_cv_.notify_one();
  }
  flusher_.join();
}

void ReplySender::Queue(InflightRequest* ir, HeldReplies* reader) {
  {
    MutexLock l(&mu_);
    queue_.push_back(ir);
    if (reader) reader->answered_inline = true;
    if (sending_) return;  // the sender writes it
    if (reader && reader->may_hold) {
      // The reader sends it with the next request's reply.
      if (queue_.size() < kMaxHeldReplies) {
        reader->holding = true;
        return;
      }
      reader->batch_full = true;
      reader->holding = false;  // all go out now
    }
    sending_ = true;
  }
  SendQueued(/*may_block=*/reader != nullptr);
}

void ReplySender::SendHeld(HeldReplies* reader) {
  reader->holding = false;
  {
    MutexLock l(&mu_);
    if (sending_ || queue_.empty()) return;  // a sender takes them along
    sending_ = true;
  }
  SendQueued(/*may_block=*/true);
}

void ReplySender::SendQueued(bool may_block) {
  uint64_t done_count = 0, done_bytes = 0;
  for (;;) {
    {
      MutexLock l(&mu_);
      unsent_.insert(unsent_.end(), queue_.begin(), queue_.end());
      queue_.clear();
      if (unsent_.empty()) {
        sending_ = false;
        break;
      }
    }
    size_t written = 0;
    const bool all_written = WriteUnsent(may_block, &written);
    for (size_t i = 0; i < written; i++) {
      InflightRequest* r = unsent_[i];
      done_count++;
      done_bytes += r->accounted_bytes;
      buffers_->Put(r->data, r->data_capacity);
      delete r;
    }
    unsent_.erase(unsent_.begin(), unsent_.begin() + static_cast<ptrdiff_t>(written));
    // Give the slots back as replies go out, but keep one: holding it keeps
    // the connection alive while this thread still uses it.
    if (done_count > 1) {
      budget_->Release(done_count - 1, done_bytes);
      done_count = 1;
      done_bytes = 0;
    }
    if (!all_written) {
      MutexLock l(&mu_);
      flusher_wanted_ = true;  // the flusher takes the sender's token over
      flusher_cv_.notify_one();
      break;
    }
  }
  // The last time this thread touches the connection.
  if (done_count) budget_->Release(done_count, done_bytes);
}

void ReplySender::FlusherLoop() {
  for (;;) {
    {
      MutexLock l(&mu_);
      l.Wait(&flusher_cv_, [this]() REQUIRES(mu_) { return flusher_wanted_ || flusher_stop_; });
      if (!flusher_wanted_) break;
      flusher_wanted_ = false;
    }
    SendQueued(/*may_block=*/true);
  }
}

bool ReplySender::LeaveSendTime() {
  const auto now = std::chrono::steady_clock::now();
  if (reply_started_ == std::chrono::steady_clock::time_point{}) reply_started_ = now;
  const auto left = std::chrono::duration_cast<std::chrono::microseconds>(
      reply_started_ + std::chrono::seconds(send_timeout_s_) - now);
  if (left.count() <= 0) return false;
  // The socket's send timeout is send-timeout from the start: narrowed
  // only once a reply has been on its way for a second (a slow reader),
  // not with a system call on every send.
  if (now - reply_started_ >= std::chrono::seconds(1)) {
    transport_->SetSendTimeout(left);
    send_timeout_narrowed_ = true;
  }
  return true;
}

void ReplySender::BreakConnection() {
  send_broken_ = true;
  transport_->ShutdownBoth();
}

bool ReplySender::WriteUnsent(bool may_block, size_t* written) {
  constexpr size_t kMaxIov = 1024;  // IOV_MAX on Linux
  const auto wait = may_block ? Transport::Wait::kBlock : Transport::Wait::kNoWait;
  std::vector<iovec> iov;
  iov.reserve(std::min(kMaxIov, 2 * unsent_.size()));
  size_t first = 0;  // unsent_[first] is the first reply not yet fully written
  bool all_written = true;
  while (first < unsent_.size()) {
    if (send_broken_) {  // the connection is going away: drop the rest
      first = unsent_.size();
      unsent_offset_ = 0;
      break;
    }
    iov.clear();
    size_t skip = unsent_offset_;
    size_t end = first;
    for (; end < unsent_.size() && iov.size() + 2 <= kMaxIov; end++) {
      InflightRequest* r = unsent_[end];
      const iovec parts[2] = {{r->reply_hdr, r->reply_hdr_len},
                              {const_cast<void*>(r->reply_data), r->reply_data_len}};
      for (const iovec& part : parts) {
        if (skip >= part.iov_len) {
          skip -= part.iov_len;
          continue;
        }
        iov.push_back({static_cast<uint8_t*>(part.iov_base) + skip, part.iov_len - skip});
        skip = 0;
      }
    }
    if (may_block && !LeaveSendTime()) {
      LOG_WARN(*log_name_, "the client did not take a reply within %d s (send-timeout); "
               "dropping the connection", send_timeout_s_);
      BreakConnection();
      continue;
    }
    ssize_t w = transport_->Send(iov.data(), static_cast<int>(iov.size()), wait);
    if (w < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        if (may_block) continue;  // the send timeout: LeaveSendTime decides
        all_written = false;
        break;
      }
      LOG_WARN(*log_name_, "send reply: %s; dropping the connection", strerror(errno));
      BreakConnection();
      continue;
    }
    size_t advance = unsent_offset_ + static_cast<size_t>(w);
    while (first < end && advance >= unsent_[first]->reply_length()) {
      advance -= unsent_[first]->reply_length();
      first++;
      reply_started_ = {};  // the next reply's time starts when it is first sent
      if (send_timeout_narrowed_) {
        transport_->SetSendTimeout(std::chrono::seconds(send_timeout_s_));
        send_timeout_narrowed_ = false;
      }
    }
    unsent_offset_ = advance;
  }
  *written = first;
  return all_written;
}

}  // namespace nbdr
