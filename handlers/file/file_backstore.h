// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// The file handler's shared parts: its instance and export state, and the
// path helpers that keep every lookup beneath the base directory
// (file_handler.cc serves backstores, file_snapshots.cc snapshots them).
// Internal to libfile_handler.so.
#pragma once

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "handlers/common/handler_util.h"
#include "handlers/file/uring_engine.h"
#include "nbd-runner/handler.h"
#include "utils/mutex.h"
#include "utils/unique_fd.h"

namespace file_backstore {

using nbdr::UniqueFd;

// Opens path relative to dirfd without leaving dirfd's tree.
inline int OpenBeneath(int dirfd, const char* path, int flags, mode_t mode = 0) {
  open_how how{};
  how.flags = static_cast<uint64_t>(flags | O_CLOEXEC);
  how.mode = (flags & O_CREAT) ? mode : 0;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
  for (;;) {
    long fd = syscall(SYS_openat2, dirfd, path, &how, sizeof how);
    if (fd < 0 && errno == EAGAIN) continue;  // a rename raced the lookup
    return static_cast<int>(fd);
  }
}

struct FileHandler {
  const nbdr_services* svc;
  std::string base_path;
  UniqueFd base;  // O_PATH directory: every lookup starts here
  unsigned file_mode = handler_util::kDefaultFileMode;  // file-mode
  bool inline_io = true;
  // Declared in the order they start: the ring (whose fallback runs on
  // the pool) stops before the pool.
  std::unique_ptr<handler_util::WorkerPool> pool;
  std::unique_ptr<UringEngine> uring;  // file-io = uring
  // Held while a create makes directories and its file in them, and while
  // a failed create removes them again: a directory another create is
  // about to use is never removed from under it.
  nbdr::Mutex namespace_mu;
};

struct FileExport {
  FileExport(FileHandler* handler, std::string k, UniqueFd f, uint64_t sz, bool ro)
      : h(handler), key(std::move(k)), fd(std::move(f)), size(sz), readonly(ro) {}
  FileHandler* h;
  std::string key;
  UniqueFd fd;
  uint64_t size;
  bool readonly;
  // tmpfs/ramfs: I/O never waits for a device, so writes and small reads
  // run inline even though such file systems refuse RWF_NOWAIT.
  bool memory_backed = false;
  // Cleared when the file system refuses RWF_NOWAIT reads or writes.
  std::atomic<bool> nowait_reads{true};
  std::atomic<bool> nowait_writes{true};
};

// Splits "a/b/c.img" into "a/b" and "c.img" (dir "" for a bare name).
inline void SplitKey(const std::string& key, std::string* dir, std::string* base) {
  size_t slash = key.rfind('/');
  *dir = slash == std::string::npos ? "" : key.substr(0, slash);
  *base = slash == std::string::npos ? key : key.substr(slash + 1);
}

// Opens (flags) the directory dir under the base, creating missing
// components when made is given; each one it creates is appended to *made
// (parents first).
inline int OpenDir(FileHandler* h, const std::string& dir, std::vector<std::string>* made,
                   int flags) {
  if (dir.empty()) return OpenBeneath(h->base.get(), ".", flags | O_DIRECTORY);
  if (made) {
    size_t pos = 0;
    while (pos != std::string::npos) {
      pos = dir.find('/', pos + 1);
      std::string prefix = dir.substr(0, pos);
      UniqueFd probe(OpenBeneath(h->base.get(), prefix.c_str(), O_PATH | O_DIRECTORY));
      if (probe.valid()) continue;
      if (errno != ENOENT) return -1;
      std::string parent, name;
      SplitKey(prefix, &parent, &name);
      UniqueFd pfd(parent.empty()
                       ? OpenBeneath(h->base.get(), ".", O_PATH | O_DIRECTORY)
                       : OpenBeneath(h->base.get(), parent.c_str(), O_PATH | O_DIRECTORY));
      if (!pfd.valid()) return -1;
      if (mkdirat(pfd.get(), name.c_str(), handler_util::DirModeFor(h->file_mode)) == 0)
        made->push_back(prefix);
      else if (errno != EEXIST)
        return -1;
    }
  }
  return OpenBeneath(h->base.get(), dir.c_str(), flags | O_DIRECTORY);
}

// Removes the directories a failed create made (OpenDir's *made), deepest
// first; one that meanwhile holds something (another create's) stays.
inline void RemoveMadeDirs(FileHandler* h, const std::vector<std::string>& made) {
  int saved = errno;
  for (auto it = made.rbegin(); it != made.rend(); ++it) {
    std::string parent, name;
    SplitKey(*it, &parent, &name);
    UniqueFd pfd(
        OpenBeneath(h->base.get(), parent.empty() ? "." : parent.c_str(), O_PATH | O_DIRECTORY));
    if (!pfd.valid() || unlinkat(pfd.get(), name.c_str(), AT_REMOVEDIR) < 0) break;
  }
  errno = saved;
}

inline int Errno(int fallback = EIO) { return errno ? errno : fallback; }

// Snapshots (file_snapshots.cc): KEY@NAME files beside KEY, made with a
// reflink (FICLONE) or, when asked, a copy of the file's data.
struct SnapshotFile {
  std::string name;
  uint64_t size;
  int64_t created;  // its mtime: written once, when it was taken
};
// The snapshots of base (a file name in dir), oldest first.
std::vector<SnapshotFile> SnapshotFiles(int dir, const std::string& base);
handler_util::SnapshotCreateFn SnapshotCreate;
handler_util::SnapshotDeleteFn SnapshotDelete;
handler_util::SnapshotListFn SnapshotList;
handler_util::SnapshotRollbackFn SnapshotRollback;
handler_util::SnapshotCopyRangesFn SnapshotCopyRanges;

}  // namespace file_backstore
