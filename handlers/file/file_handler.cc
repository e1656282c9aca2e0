// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// The file handler (libfile_handler.so): backstores are regular files under
// one base directory on the runner host (option file-dir).
//
// Keys are relative paths resolved with openat2(RESOLVE_BENEATH), so no key
// and no symlink can reach outside the base directory. I/O is asynchronous
// through a pool of worker threads (option threads); reads and writes whose
// data is already in the page cache complete inline with
// preadv2/pwritev2(RWF_NOWAIT), and on tmpfs (which cannot block on a
// device but refuses RWF_NOWAIT) writes and small reads run inline; option
// file-io = threads sends everything to the pool, file-io = uring sends
// reads, writes and flushes to io_uring (uring_engine.h). Flush is
// fdatasync, FUA is RWF_DSYNC, trim punches holes, extents come from
// SEEK_DATA/SEEK_HOLE.
//
// Thread-safety: every callback may be called from any runner thread.
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/magic.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "handlers/common/handler_util.h"
#include "handlers/file/file_backstore.h"
#include "handlers/file/uring_engine.h"
#include "nbd-runner/handler.h"
#include "utils/unique_fd.h"

namespace {

using handler_util::SetErr;
using nbdr::MutexLock;
using nbdr::UniqueFd;
using namespace file_backstore;  // NOLINT: this handler's own parts

constexpr char kDefaultDir[] = "/var/lib/nbd-runner/file";

// ---- synchronous execution of one request -------------------------------

int ReadFull(int fd, void* buf, uint64_t len, uint64_t off) {
  auto* p = static_cast<char*>(buf);
  while (len > 0) {
    ssize_t n = pread(fd, p, len, static_cast<off_t>(off));
    if (n < 0) {
      if (errno == EINTR) continue;
      return Errno();
    }
    if (n == 0) return EIO;  // file shrank under us
    p += n;
    len -= static_cast<uint64_t>(n);
    off += static_cast<uint64_t>(n);
  }
  return 0;
}

int WriteFull(int fd, const void* buf, uint64_t len, uint64_t off, bool fua) {
  const char* p = static_cast<const char*>(buf);
  while (len > 0) {
    iovec iov{const_cast<char*>(p), len};
    ssize_t n = pwritev2(fd, &iov, 1, static_cast<off_t>(off), fua ? RWF_DSYNC : 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Errno();
    }
    p += n;
    len -= static_cast<uint64_t>(n);
    off += static_cast<uint64_t>(n);
  }
  return 0;
}

int WriteZeroBuffers(int fd, uint64_t off, uint64_t len) {
  static const std::vector<char> zeroes(1 << 20, 0);
  while (len > 0) {
    uint64_t n = std::min<uint64_t>(len, zeroes.size());
    if (int rc = WriteFull(fd, zeroes.data(), n, off, false)) return rc;
    off += n;
    len -= n;
  }
  return 0;
}

int Extents(FileExport* e, nbdr_request* r) {
  // The runner keeps requests inside the export, whose size a resize
  // changes: no end of our own.
  return handler_util::FillExtents(r, UINT64_MAX, [e](uint64_t pos, int whence) -> int64_t {
    return lseek(e->fd.get(), static_cast<off_t>(pos), whence);
  });
}

int Execute(FileExport* e, nbdr_request* r) {
  int fd = e->fd.get();
  bool fua = r->flags & NBDR_REQ_FLAG_FUA;
  switch (r->type) {
    case NBDR_REQ_READ:
      return ReadFull(fd, r->buf, r->length, r->offset);
    case NBDR_REQ_WRITE:
      return WriteFull(fd, r->buf, r->length, r->offset, fua);
    case NBDR_REQ_FLUSH:
      return fdatasync(fd) < 0 ? Errno() : 0;
    case NBDR_REQ_TRIM:
      if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(r->offset),
                    static_cast<off_t>(r->length)) < 0 &&
          errno != EOPNOTSUPP)
        return Errno();
      return fua && fdatasync(fd) < 0 ? Errno() : 0;
    case NBDR_REQ_WRITE_ZEROES: {
      off_t off = static_cast<off_t>(r->offset), len = static_cast<off_t>(r->length);
      bool done = false;
      if (!(r->flags & NBDR_REQ_FLAG_NO_HOLE) &&
          fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, len) == 0)
        done = true;
      if (!done && fallocate(fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, off, len) == 0)
        done = true;
      if (!done) {
        if (r->flags & NBDR_REQ_FLAG_FAST_ZERO) return ENOTSUP;
        if (int rc = WriteZeroBuffers(fd, r->offset, r->length)) return rc;
      }
      return fua && fdatasync(fd) < 0 ? Errno() : 0;
    }
    case NBDR_REQ_CACHE:
      posix_fadvise(fd, static_cast<off_t>(r->offset), static_cast<off_t>(r->length),
                    POSIX_FADV_WILLNEED);
      return 0;
    case NBDR_REQ_EXTENTS:
      return Extents(e, r);
    default:
      return EINVAL;
  }
}

// ---- handler callbacks --------------------------------------------------

int FileLoad(const nbdr_services* svc, void** state, char* err, size_t errlen) {
  auto h = std::make_unique<FileHandler>();
  h->svc = svc;
  const char* dir = svc->get_option(svc->ctx, "file-dir");
  h->base_path = dir && *dir ? dir : kDefaultDir;
  const char* io = svc->get_option(svc->ctx, "file-io");
  bool use_uring = false;
  if (io && *io) {
    if (!strcmp(io, "threads")) {
      h->inline_io = false;
    } else if (!strcmp(io, "uring")) {
      h->inline_io = false;
      use_uring = true;
    } else if (strcmp(io, "nowait") != 0) {
      SetErr(err, errlen, "file-io: '%s' is not 'nowait', 'threads' or 'uring'", io);
      return EINVAL;
    }
  }
  if (int rc = handler_util::LoadFileModeOption(svc, "file-mode", &h->file_mode, err, errlen))
    return rc;
  int threads = 8;
  if (const char* t = svc->get_option(svc->ctx, NBDR_OPTION_THREADS); t && *t)
    threads = std::max(1, atoi(t));
  // Create the base directory (and its parents) when missing.
  std::string cur;
  for (size_t pos = 0; pos != std::string::npos;) {
    pos = h->base_path.find('/', pos + 1);
    cur = h->base_path.substr(0, pos);
    if (!cur.empty()) mkdir(cur.c_str(), handler_util::DirModeFor(h->file_mode));
  }
  h->base = UniqueFd(open(h->base_path.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!h->base.valid()) {
    int e = errno ? errno : EIO;
    SetErr(err, errlen, "base directory %s: %s", h->base_path.c_str(), strerror(e));
    return e;
  }
  h->pool = std::make_unique<handler_util::WorkerPool>(threads);
  if (use_uring) {
    std::string why;
    h->uring.reset(UringEngine::Create(
        256,
        [h = h.get()](nbdr_request* r) {
          h->pool->Submit([r] {
            errno = 0;
            r->complete(r, Execute(static_cast<FileExport*>(r->handler_private), r));
          });
        },
        &why));
    if (!h->uring) {
      SetErr(err, errlen, "file-io = uring: %s", why.c_str());
      return ENOTSUP;
    }
  }
  handler_util::Log(h->svc, NBDR_LOG_INFO, "", "serving files under %s (%d worker threads, %s)",
                    h->base_path.c_str(), threads,
                    h->uring       ? "reads, writes and flushes on io_uring"
                    : h->inline_io ? "inline page-cache I/O"
                                   : "all I/O on workers");
  *state = h.release();
  return 0;
}

void FileUnload(void* state) {
  delete static_cast<FileHandler*>(state);  // the ring, then the pool, then the rest
}

// The new file's size: allocated (prealloc) or sparse, then synced with
// its directory (dirfd).
int SizeNewFile(FileHandler* h, int fd, int dirfd, const char* key, const nbdr_create_params* p,
                char* err, size_t errlen) {
  int rc = 0;
  if (p->prealloc) {
    rc = posix_fallocate(fd, 0, static_cast<off_t>(p->size));
    if (rc) SetErr(err, errlen, "preallocate %s: %s", key, strerror(rc));
  } else if (ftruncate(fd, static_cast<off_t>(p->size)) < 0) {
    rc = Errno();
    SetErr(err, errlen, "make %s under %s %llu bytes long: %s%s", key, h->base_path.c_str(),
           static_cast<unsigned long long>(p->size), strerror(rc),
           rc == EFBIG ? " (more than this file system allows in one file)" : "");
  }
  if (!rc && (fsync(fd) < 0 || fsync(dirfd) < 0)) {
    rc = Errno();
    SetErr(err, errlen, "fsync %s: %s", key, strerror(rc));
  }
  return rc;
}

// Makes the file (O_EXCL) and any missing directories on its path. A
// failure leaves nothing it made behind: the file, then the directories it
// made for it (never one that another create has put something in).
int FileCreate(void* state, const char* key, const nbdr_create_params* p, char* err,
               size_t errlen) {
  auto* h = static_cast<FileHandler*>(state);
  std::string dir, name;
  SplitKey(key, &dir, &name);
  std::vector<std::string> made;
  UniqueFd dfd, fd;
  {
    MutexLock lock(&h->namespace_mu);
    dfd = UniqueFd(OpenDir(h, dir, &made, O_RDONLY));
    if (!dfd.valid()) {
      int e = Errno();
      RemoveMadeDirs(h, made);
      SetErr(err, errlen, "directory '%s' under %s: %s", dir.c_str(), h->base_path.c_str(),
             e == EXDEV ? "leaves the base directory" : strerror(e));
      return e == EXDEV ? EPERM : e;
    }
    int rc = 0;
    if (p->prealloc) {
      struct statvfs vfs;
      if (fstatvfs(dfd.get(), &vfs) == 0 &&
          static_cast<uint64_t>(vfs.f_bavail) * vfs.f_frsize < p->size) {
        SetErr(err, errlen, "not enough space under %s to preallocate %llu bytes (%llu free)",
               h->base_path.c_str(), static_cast<unsigned long long>(p->size),
               static_cast<unsigned long long>(static_cast<uint64_t>(vfs.f_bavail) * vfs.f_frsize));
        rc = ENOSPC;
      }
    }
    if (!rc) {
      fd = UniqueFd(OpenBeneath(dfd.get(), name.c_str(), O_RDWR | O_CREAT | O_EXCL, h->file_mode));
      if (!fd.valid()) {
        rc = Errno();
        if (rc == EEXIST)
          SetErr(err, errlen, "file %s already exists under %s", key, h->base_path.c_str());
        else
          SetErr(err, errlen, "create %s under %s: %s", key, h->base_path.c_str(), strerror(rc));
      }
    }
    if (rc) {
      RemoveMadeDirs(h, made);
      return rc;
    }
  }
  // Sizing (a preallocation may take long) runs without the lock: the
  // file now keeps its directories from being removed.
  if (int rc = SizeNewFile(h, fd.get(), dfd.get(), key, p, err, errlen)) {
    MutexLock lock(&h->namespace_mu);
    unlinkat(dfd.get(), name.c_str(), 0);
    RemoveMadeDirs(h, made);
    return rc;
  }
  handler_util::Log(h->svc, NBDR_LOG_INFO, key, "created %llu bytes%s",
                    static_cast<unsigned long long>(p->size), p->prealloc ? " (preallocated)" : "");
  return 0;
}

int FileRemove(void* state, const char* key, char* err, size_t errlen) {
  auto* h = static_cast<FileHandler*>(state);
  std::string dir, name;
  SplitKey(key, &dir, &name);
  UniqueFd dfd(OpenDir(h, dir, nullptr, O_RDONLY));
  if (!dfd.valid()) {
    int e = Errno();
    SetErr(err, errlen, "file %s under %s: %s", key, h->base_path.c_str(),
           e == EXDEV ? "leaves the base directory" : strerror(e));
    return e == EXDEV ? EPERM : e;
  }
  struct stat st;
  if (fstatat(dfd.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) < 0) {
    int e = Errno();
    SetErr(err, errlen, "file %s under %s: %s", key, h->base_path.c_str(), strerror(e));
    return e;
  }
  if (S_ISDIR(st.st_mode)) {
    SetErr(err, errlen, "%s under %s is a directory, not a backstore", key, h->base_path.c_str());
    return EISDIR;
  }
  if (auto snaps = SnapshotFiles(dfd.get(), name); !snaps.empty()) {
    SetErr(err, errlen, "%s has %zu snapshot(s), %s first: delete them before it", key,
           snaps.size(), snaps.front().name.c_str());
    return EBUSY;
  }
  if (unlinkat(dfd.get(), name.c_str(), 0) < 0 || fsync(dfd.get()) < 0) {
    int e = Errno();
    SetErr(err, errlen, "delete %s under %s: %s", key, h->base_path.c_str(), strerror(e));
    return e;
  }
  return 0;
}

int FileOpen(void* state, const char* key, int readonly, nbdr_export_info* info,
             void** export_handle, char* err, size_t errlen) {
  auto* h = static_cast<FileHandler*>(state);
  // O_NONBLOCK: a FIFO put in the file's place must not hang the open
  // (it is refused below); cleared again for the regular file.
  UniqueFd fd(OpenBeneath(h->base.get(), key, (readonly ? O_RDONLY : O_RDWR) | O_NONBLOCK));
  if (!fd.valid()) {
    int e = Errno();
    SetErr(err, errlen, "open %s under %s: %s", key, h->base_path.c_str(),
           e == EXDEV ? "leaves the base directory" : strerror(e));
    return e == EXDEV ? EPERM : e;
  }
  struct stat st;
  if (fstat(fd.get(), &st) < 0) {
    int e = Errno();
    SetErr(err, errlen, "stat %s: %s", key, strerror(e));
    return e;
  }
  if (!S_ISREG(st.st_mode)) {
    SetErr(err, errlen, "%s under %s is not a regular file", key, h->base_path.c_str());
    return EINVAL;
  }
  if (int fl = fcntl(fd.get(), F_GETFL); fl < 0 || fcntl(fd.get(), F_SETFL, fl & ~O_NONBLOCK) < 0) {
    int e = Errno();
    SetErr(err, errlen, "fcntl %s: %s", key, strerror(e));
    return e;
  }
  auto* e = new FileExport{h, key, std::move(fd), static_cast<uint64_t>(st.st_size), readonly != 0};
  struct statfs fs;
  if (fstatfs(e->fd.get(), &fs) == 0 && (fs.f_type == TMPFS_MAGIC || fs.f_type == RAMFS_MAGIC))
    e->memory_backed = true;
  info->size = e->size;
  info->caps = NBDR_CAP_FLUSH | NBDR_CAP_FUA | NBDR_CAP_TRIM | NBDR_CAP_WRITE_ZEROES |
               NBDR_CAP_FAST_ZERO | NBDR_CAP_MULTI_CONN | NBDR_CAP_CACHE | NBDR_CAP_EXTENTS;
  *export_handle = e;
  return 0;
}

void FileClose(void* export_handle) { delete static_cast<FileExport*>(export_handle); }

// Reads up to this size run inline on tmpfs. A larger read's reply takes
// a while to send, and measured 1M reads were faster from the pool.
constexpr uint64_t kInlineReadMax = 64 * 1024;

void FileSubmit(void* export_handle, nbdr_request* r) {
  auto* e = static_cast<FileExport*>(export_handle);
  if (e->h->uring &&
      (r->type == NBDR_REQ_READ || r->type == NBDR_REQ_WRITE || r->type == NBDR_REQ_FLUSH)) {
    r->handler_private = e;
    if (e->h->uring->Submit(e->fd.get(), r)) return;
    // The ring is full: the pool takes it.
  }
  if (e->h->inline_io && (r->type == NBDR_REQ_READ || r->type == NBDR_REQ_WRITE)) {
    // On tmpfs a write is a memory copy whatever its size, and the runner
    // hands the reading turn on before it executes a large request (or any
    // request while another is waiting), so the copy does not hold up
    // reading: a hop to the pool would only add a wake-up.
    if (e->memory_backed && (r->type == NBDR_REQ_WRITE || r->length <= kInlineReadMax)) {
      errno = 0;
      r->complete(r, Execute(e, r));
      return;
    }
    // Page-cache hits complete here without a thread hop; anything that
    // would block goes to the workers.
    iovec iov{r->buf, r->length};
    bool fua = r->flags & NBDR_REQ_FLAG_FUA;
    std::atomic<bool>& allowed = r->type == NBDR_REQ_READ ? e->nowait_reads : e->nowait_writes;
    if (allowed && !fua) {
      ssize_t n = r->type == NBDR_REQ_READ
                      ? preadv2(e->fd.get(), &iov, 1, static_cast<off_t>(r->offset), RWF_NOWAIT)
                      : pwritev2(e->fd.get(), &iov, 1, static_cast<off_t>(r->offset), RWF_NOWAIT);
      if (n >= 0 && static_cast<uint64_t>(n) == r->length) {
        r->complete(r, 0);
        return;
      }
      if (n < 0 && errno == EOPNOTSUPP) allowed = false;
      // Short or refused: the worker redoes the whole range.
    }
  }
  e->h->pool->Submit([e, r] {
    errno = 0;
    r->complete(r, Execute(e, r));
  });
}

// The file's device, inode and birth time: a file deleted and made again
// may get the same inode number back (ext4 reuses them at once), but not
// the same birth time; another file moved over it has another inode. File
// systems without birth times give device and inode only.
int FileIdentify(void* state, const char* key, char* buf, size_t buflen, char* err, size_t errlen) {
  auto* h = static_cast<FileHandler*>(state);
  UniqueFd fd(OpenBeneath(h->base.get(), key, O_PATH));  // O_PATH: never opens a FIFO
  struct statx stx;
  if (!fd.valid() || statx(fd.get(), "", AT_EMPTY_PATH, STATX_INO | STATX_BTIME, &stx) < 0) {
    int e = Errno();
    SetErr(err, errlen, "%s under %s: %s", key, h->base_path.c_str(),
           e == EXDEV ? "leaves the base directory" : strerror(e));
    return e == EXDEV ? EPERM : e;
  }
  unsigned long long dev = makedev(stx.stx_dev_major, stx.stx_dev_minor);
  if (stx.stx_mask & STATX_BTIME)
    snprintf(buf, buflen, "{\"device\":\"%llu\",\"inode\":\"%llu\",\"born\":\"%lld.%09u\"}", dev,
             static_cast<unsigned long long>(stx.stx_ino),
             static_cast<long long>(stx.stx_btime.tv_sec), stx.stx_btime.tv_nsec);
  else
    snprintf(buf, buflen, "{\"device\":\"%llu\",\"inode\":\"%llu\"}", dev,
             static_cast<unsigned long long>(stx.stx_ino));
  return 0;
}

// Sets the file's length (a grow leaves a sparse tail) and syncs it. Open
// exports need nothing more: their requests past the old end work at once.
int FileExportSize(void* export_handle, uint64_t* size, char* err, size_t errlen) {
  auto* e = static_cast<FileExport*>(export_handle);
  struct stat st;
  if (fstat(e->fd.get(), &st) < 0) {
    int rc = Errno();
    SetErr(err, errlen, "%s: %s", e->key.c_str(), strerror(rc));
    return rc;
  }
  *size = static_cast<uint64_t>(st.st_size);
  return 0;
}

int FileResize(void* state, const char* key, uint64_t size, int may_shrink, char* err,
               size_t errlen) {
  auto* h = static_cast<FileHandler*>(state);
  UniqueFd fd(OpenBeneath(h->base.get(), key, O_WRONLY | O_NONBLOCK));
  struct stat st;
  if (!fd.valid() || fstat(fd.get(), &st) < 0) {
    int e = Errno();
    SetErr(err, errlen, "open %s under %s: %s", key, h->base_path.c_str(),
           e == EXDEV ? "leaves the base directory" : strerror(e));
    return e == EXDEV ? EPERM : e;
  }
  if (!S_ISREG(st.st_mode)) {
    SetErr(err, errlen, "%s under %s is not a regular file", key, h->base_path.c_str());
    return EINVAL;
  }
  if (int rc = handler_util::RefuseHiddenShrink(may_shrink, static_cast<uint64_t>(st.st_size), size,
                                                key, err, errlen))
    return rc;
  if (ftruncate(fd.get(), static_cast<off_t>(size)) < 0 || fsync(fd.get()) < 0) {
    int e = Errno();
    SetErr(err, errlen, "resize %s to %llu bytes: %s", key, static_cast<unsigned long long>(size),
           strerror(e));
    return e;
  }
  return 0;
}

const char* const kOptions[] = {"file-dir", "file-io", "file-mode", nullptr};

const nbdr_handler kFileHandler = {
    sizeof(nbdr_handler),
    NBDR_HANDLER_ABI_VERSION,
    "file",
    "regular files under a local base directory",
    NBDR_PACKAGE_VERSION,
    "file-dir=DIR   base directory of the backstores (default /var/lib/nbd-runner/file)\n"
    "file-io=MODE   nowait (default: page-cache hits complete inline), threads or uring\n"
    "               (the runner's threads option sets how many workers)\n"
    "file-mode=MODE permissions of the files create makes (default 0600; 0600 to 0666),\n"
    "               and of the directories it makes for them (0700 for 0600)\n",
    kOptions,
    FileLoad,
    FileUnload,
    FileCreate,
    FileRemove,
    FileOpen,
    FileClose,
    FileSubmit,
    FileIdentify,
    nullptr,  // take_over: no fence of its own; the runner's fencing applies
    FileResize,
    SnapshotCreate,
    SnapshotDelete,
    SnapshotList,
    SnapshotRollback,
    SnapshotCopyRanges,
    FileExportSize,
};

}  // namespace

extern "C" NBDR_HANDLER_EXPORT const nbdr_handler* handler_init(const nbdr_services* svc) {
  (void)svc;
  return &kFileHandler;
}
