// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// UringEngine; see uring_engine.h.
#include "handlers/file/uring_engine.h"

#include <sys/uio.h>

#include <cerrno>
#include <cstring>

struct UringEngine::Op {
  nbdr_request* r;
  int fd;
  uint64_t done;  // bytes transferred so far
};

UringEngine* UringEngine::Create(unsigned entries, Fallback fallback, std::string* why) {
  auto* e = new UringEngine();
  e->fallback_ = std::move(fallback);
  int rc = io_uring_queue_init(entries, &e->ring_, 0);
  if (rc < 0) {
    *why = std::string("io_uring is not available: ") + strerror(-rc);
    delete e;
    return nullptr;
  }
  e->reaper_ = std::thread([e] { e->Reap(); });
  return e;
}

UringEngine::~UringEngine() {
  if (reaper_.joinable()) {
    stopping_ = true;
    {
      // A no-op with no request wakes the reaper, which then sees stopping_.
      nbdr::MutexLock l(&sq_mu_);
      io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
      while (!sqe) {
        io_uring_submit(&ring_);
        sqe = io_uring_get_sqe(&ring_);
      }
      io_uring_prep_nop(sqe);
      io_uring_sqe_set_data(sqe, nullptr);
      io_uring_submit(&ring_);
    }
    reaper_.join();
    io_uring_queue_exit(&ring_);
  }
}

bool UringEngine::Submit(int fd, nbdr_request* r) {
  auto* op = new Op{r, fd, 0};
  if (Queue(op)) return true;
  delete op;
  return false;
}

bool UringEngine::Queue(Op* op) {
  nbdr_request* r = op->r;
  nbdr::MutexLock l(&sq_mu_);
  io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
  if (!sqe) return false;
  char* buf = static_cast<char*>(r->buf) + op->done;
  unsigned len = static_cast<unsigned>(r->length - op->done);
  off_t off = static_cast<off_t>(r->offset + op->done);
  switch (r->type) {
    case NBDR_REQ_READ:
      io_uring_prep_read(sqe, op->fd, buf, len, off);
      break;
    case NBDR_REQ_WRITE:
      io_uring_prep_write(sqe, op->fd, buf, len, off);
      if (r->flags & NBDR_REQ_FLAG_FUA) sqe->rw_flags = RWF_DSYNC;
      break;
    default:  // NBDR_REQ_FLUSH
      io_uring_prep_fsync(sqe, op->fd, IORING_FSYNC_DATASYNC);
      break;
  }
  io_uring_sqe_set_data(sqe, op);
  int rc;
  do {
    rc = io_uring_submit(&ring_);
  } while (rc == -EINTR);
  // The entry stays in the ring either way; a refused submit (completion
  // queue overflowing) is retried by the reaper once it made room.
  unsubmitted_ = rc < 0;
  return true;
}

void UringEngine::Reap() {
  for (;;) {
    io_uring_cqe* cqe = nullptr;
    int rc = io_uring_wait_cqe(&ring_, &cqe);
    if (rc == -EINTR) continue;
    if (rc < 0) {
      if (stopping_) return;
      continue;
    }
    auto* op = static_cast<Op*>(io_uring_cqe_get_data(cqe));
    int res = cqe->res;
    io_uring_cqe_seen(&ring_, cqe);
    if (unsubmitted_) {
      nbdr::MutexLock l(&sq_mu_);
      unsubmitted_ = io_uring_submit(&ring_) < 0;
    }
    if (!op) {
      if (stopping_) return;
      continue;
    }
    nbdr_request* r = op->r;
    int error = 0;
    if (res < 0) {
      error = -res;
      if (error == EAGAIN || error == EINTR) {
        if (Queue(op)) continue;  // try the same step again
        delete op;
        fallback_(r);
        continue;
      }
    } else if (r->type != NBDR_REQ_FLUSH) {
      if (res == 0 && r->type == NBDR_REQ_READ) {
        error = EIO;  // the file shrank under us
      } else {
        op->done += static_cast<uint64_t>(res);
        if (op->done < r->length) {
          if (Queue(op)) continue;  // short transfer: the rest
          delete op;
          fallback_(r);  // redoes the whole range
          continue;
        }
      }
    }
    delete op;
    r->complete(r, error);
  }
}
