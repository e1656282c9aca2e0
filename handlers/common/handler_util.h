// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// Small helpers every bundled handler uses: operator-facing error
// sentences, logging through the runner's services table, a pool of
// worker threads for work that may block (the ABI's submit must not), and
// option parsing.
// Header-only, so a handler .so stays self-contained and links no runner
// code.
#ifndef NBDR_HANDLERS_COMMON_HANDLER_UTIL_H
#define NBDR_HANDLERS_COMMON_HANDLER_UTIL_H

#include <dlfcn.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include "nbd-runner/handler.h"
#include "utils/mutex.h"
#include "utils/parse_number.h"

namespace handler_util {

// Keeps the library holding `symbol` (and so every library it links)
// mapped until the process exits, though the runner dlcloses it after
// unload: for an unload that leaves a backend library's threads running
// for the process exit to end. Returns false if it could not.
inline bool KeepLoadedUntilExit(const void* symbol) {
  Dl_info self;
  if (!dladdr(symbol, &self) || !self.dli_fname) return false;
  return dlopen(self.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE) != nullptr;
}

// The ABI's snapshot callbacks as function types, for a handler to declare
// its own with ("handler_util::SnapshotCreateFn SnapshotCreate;").
using SnapshotCreateFn = std::remove_pointer_t<decltype(nbdr_handler::snapshot_create)>;
using SnapshotDeleteFn = std::remove_pointer_t<decltype(nbdr_handler::snapshot_delete)>;
using SnapshotListFn = std::remove_pointer_t<decltype(nbdr_handler::snapshot_list)>;
using SnapshotRollbackFn = std::remove_pointer_t<decltype(nbdr_handler::snapshot_rollback)>;
using SnapshotCopyRangesFn = std::remove_pointer_t<decltype(nbdr_handler::snapshot_copy_ranges)>;

// Writes one sentence for the operator into the ABI's err buffer.
inline void SetErr(char* err, size_t errlen, const char* fmt, ...)
    __attribute__((format(printf, 3, 4)));
inline void SetErr(char* err, size_t errlen, const char* fmt, ...) {
  if (!err || errlen == 0) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
}

// Logs one line through the runner; context names the backstore or volume.
inline void Log(const nbdr_services* svc, int level, const std::string& context, const char* fmt,
                ...) __attribute__((format(printf, 4, 5)));
inline void Log(const nbdr_services* svc, int level, const std::string& context, const char* fmt,
                ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  svc->log(svc->ctx, level, context.c_str(), "%s", msg);
}

// Logs an export's failed requests without flooding the log while its
// backend is down: the first kBurst failures of each kWindowS-second window
// get a line each, the rest are counted and summed up in one line when the
// next window's first failure comes, or at Flush (the export's close).
class FailedRequestLog {
 public:
  static constexpr int kBurst = 5;
  static constexpr int64_t kWindowS = 10;

  void Note(const nbdr_services* svc, const std::string& context, uint32_t type, uint64_t offset,
            int err) {
    timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    nbdr::MutexLock l(&mu_);
    if (now.tv_sec - window_start_ >= kWindowS) {
      SummaryLocked(svc, context);
      window_start_ = now.tv_sec;
      logged_ = 0;
    }
    if (logged_ < kBurst) {
      logged_++;
      Log(svc, NBDR_LOG_WARNING, context, "request type %u at %llu: %s", type,
          static_cast<unsigned long long>(offset), strerror(err));
    } else {
      suppressed_++;
      last_err_ = err;
    }
  }
  void Flush(const nbdr_services* svc, const std::string& context) {
    nbdr::MutexLock l(&mu_);
    SummaryLocked(svc, context);
  }

 private:
  void SummaryLocked(const nbdr_services* svc, const std::string& context) REQUIRES(mu_) {
    if (suppressed_ == 0) return;
    Log(svc, NBDR_LOG_WARNING, context,
        "%llu more requests failed (the last: %s), not logged "
        "one by one",
        static_cast<unsigned long long>(suppressed_), strerror(last_err_));
    suppressed_ = 0;
  }

  nbdr::Mutex mu_;
  int64_t window_start_ GUARDED_BY(mu_) = -kWindowS;
  int logged_ GUARDED_BY(mu_) = 0;  // this window
  uint64_t suppressed_ GUARDED_BY(mu_) = 0;
  int last_err_ GUARDED_BY(mu_) = 0;
};

// A fixed set of threads running queued tasks in order of submission.
// The destructor runs every task already queued, then joins.
class WorkerPool {
 public:
  explicit WorkerPool(int threads) {
    for (int i = 0; i < threads; i++) threads_.emplace_back([this] { Loop(); });
  }
  ~WorkerPool() {
    {
      nbdr::MutexLock l(&mu_);
      stop_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_) t.join();
  }
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  void Submit(std::function<void()> task) {
    {
      nbdr::MutexLock l(&mu_);
      queue_.push_back(std::move(task));
    }
    cv_.notify_one();
  }

 private:
  void Loop() {
    for (;;) {
      std::function<void()> task;
      {
        nbdr::MutexLock l(&mu_);
        l.Wait(&cv_, [&]() REQUIRES(mu_) { return stop_ || !queue_.empty(); });
        if (queue_.empty()) return;  // stopping and drained
        task = std::move(queue_.front());
        queue_.pop_front();
      }
      task();
    }
  }

  nbdr::Mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_ GUARDED_BY(mu_);
  bool stop_ GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

// A resize that is not meant to shrink (may_shrink 0) meets an object of
// have bytes, grown behind the runner's back past size: refuses it (the
// runner has not checked that nothing uses the tail). EINVAL, or 0 when
// the resize may go on.
inline int RefuseHiddenShrink(int may_shrink, uint64_t have, uint64_t size, const char* key,
                              char* err, size_t errlen) {
  if (may_shrink || have <= size) return 0;
  SetErr(err, errlen,
         "%s holds %llu bytes, more than the %llu asked (it grew behind the runner's back): "
         "that would shrink it; a shrink needs 'shrink'",
         key, static_cast<unsigned long long>(have), static_cast<unsigned long long>(size));
  return EINVAL;
}

// Parses a positive decimal option value; returns fallback when unset and
// -1 when set but not a number in [min, max].
inline long ParseIntOption(const char* value, long fallback, long min, long max) {
  if (!value || !*value) return fallback;
  return nbdr::ParseLongInRange(value, min, max).value_or(-1);
}

// The default mode of the files a handler creates (file-mode,
// gluster-file-mode): only the runner's user reads a disk image.
constexpr unsigned kDefaultFileMode = 0600;

// Parses a file-mode option: octal, the owner may read and write, nobody
// may execute, no special bits (0600 to 0666). Returns fallback when
// unset and -1 when set but not such a mode.
inline long ParseFileModeOption(const char* value, long fallback) {
  if (!value || !*value) return fallback;
  char* end = nullptr;
  errno = 0;
  const long mode = strtol(value, &end, 8);
  if (errno || *end || value[0] == '-' || mode < 0600 || mode > 0666 || (mode & 0111) ||
      (mode & 0600) != 0600)
    return -1;
  return mode;
}

// The mode of a directory made for files of file_mode: who may read the
// files may search the directory (0600 -> 0700, 0640 -> 0750).
constexpr unsigned DirModeFor(unsigned file_mode) { return file_mode | ((file_mode & 0444) >> 2); }

// Reads the file-mode option named key into *mode (the default when
// unset); EINVAL with a message in err when it is not a valid mode.
inline int LoadFileModeOption(const nbdr_services* svc, const char* key, unsigned* mode, char* err,
                              size_t errlen) {
  const char* text = svc->get_option(svc->ctx, key);
  const long parsed = ParseFileModeOption(text, kDefaultFileMode);
  if (parsed < 0) {
    SetErr(err, errlen, "%s: '%s' is not an octal mode from 0600 to 0666", key, text);
    return EINVAL;
  }
  *mode = static_cast<unsigned>(parsed);
  return 0;
}

// Fills r->extents from r->offset with SEEK_DATA/SEEK_HOLE answers of
// seek(pos, whence), which returns the new offset or -1 with errno set.
// A backend that cannot tell (EINVAL, EOPNOTSUPP, ENOSYS) reports data.
// Returns 0 or a positive errno.
template <typename SeekFn>
int FillExtents(nbdr_request* r, uint64_t size, SeekFn seek) {
  uint64_t pos = r->offset, end = r->offset + r->length < size ? r->offset + r->length : size;
  uint32_t n = 0;
  int retries = 0;
  auto add = [&](uint64_t len, uint32_t flags) {
    r->extents[n].length = len;
    r->extents[n].flags = flags;
    n++;
    pos += len;
  };
  while (pos < end && n < r->max_extents) {
    errno = 0;
    int64_t data = seek(pos, SEEK_DATA);
    if (data < 0) {
      if (errno == ENXIO)
        add(end - pos, NBDR_EXTENT_HOLE | NBDR_EXTENT_ZERO);
      else if (errno == EINVAL || errno == EOPNOTSUPP || errno == ENOSYS)
        add(end - pos, 0);
      else
        return errno ? errno : EIO;
      break;
    }
    if (static_cast<uint64_t>(data) < pos) return EIO;  // an answer before pos is no answer
    if (static_cast<uint64_t>(data) > pos) {
      add((static_cast<uint64_t>(data) < end ? static_cast<uint64_t>(data) : end) - pos,
          NBDR_EXTENT_HOLE | NBDR_EXTENT_ZERO);
      continue;
    }
    errno = 0;
    int64_t hole = seek(pos, SEEK_HOLE);
    if (hole < 0) return errno ? errno : EIO;
    if (static_cast<uint64_t>(hole) <= pos) {
      // A trim between the two seeks made pos a hole: ask again.
      if (++retries < 3) continue;
      return EIO;
    }
    add((static_cast<uint64_t>(hole) < end ? static_cast<uint64_t>(hole) : end) - pos, 0);
  }
  r->nr_extents = n;
  return 0;
}

}  // namespace handler_util

#endif  // NBDR_HANDLERS_COMMON_HANDLER_UTIL_H
