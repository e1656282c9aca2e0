// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// The gluster handler's shared parts: its instance and mounted volumes,
// resolving a key to a path on a mounted volume, and operator sentences
// for failed gfapi calls (gluster_handler.cc serves files,
// gluster_snapshots.cc snapshots them). Internal to libgluster_handler.so.
#pragma once

#include <glusterfs/api/glfs.h>
#include <sys/stat.h>

#include <cerrno>
#include <condition_variable>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "handlers/common/handler_util.h"
#include "nbd-runner/handler.h"
#include "utils/mutex.h"

namespace gluster_backstore {

struct GlfsClose {
  void operator()(glfs_fd_t* fd) const { glfs_close(fd); }
};
using GlfsFd = std::unique_ptr<glfs_fd_t, GlfsClose>;

constexpr int kDefaultVolfilePort = 24007;
constexpr long kDefaultTimeoutSeconds = 30;
// The most the client translator's frame-timeout takes (a day).
constexpr long kMaxFrameTimeoutSeconds = 86400;
// gfapi's log levels (GF_LOG_*), by the names gluster-log-level accepts.
constexpr struct {
  const char* name;
  int level;
} kGlusterLogLevels[] = {{"error", 4}, {"warning", 5}, {"info", 7}, {"debug", 8}, {"trace", 9}};
constexpr int kDefaultGlusterLogLevel = 5;  // warning

struct VolfileServer {
  std::string host;
  int port = kDefaultVolfilePort;
};

// One mounted volume: the glfs_t every backstore on it shares, and the
// threads for its blocking calls.
struct Volume {
  std::string name;
  glfs_t* fs = nullptr;
  std::unique_ptr<handler_util::WorkerPool> pool;
};

constexpr int kPoolThreadsPerVolume = 4;

struct GlusterHandler {
  const nbdr_services* svc = nullptr;
  std::vector<VolfileServer> servers;
  std::string hosts_text;  // as configured, for error messages
  long timeout_s = kDefaultTimeoutSeconds;
  long request_timeout_s = 0;  // gluster-request-timeout; 0: the volume's frame-timeout
  unsigned file_mode = handler_util::kDefaultFileMode;  // gluster-file-mode
  std::string log_dir;
  int gfapi_log_level = kDefaultGlusterLogLevel;
  nbdr::Mutex mu;  // guards volumes and mounting (not held while a volume mounts)
  std::map<std::string, std::unique_ptr<Volume>> volumes;
  // A first mount under way, which other callers for that volume wait for
  // and share (its volume, or its error).
  struct MountAttempt {
    bool done = false;
    int rc = 0;
    std::string err;
  };
  std::map<std::string, std::shared_ptr<MountAttempt>> mounting;
  std::condition_variable mount_done;  // an attempt in `mounting` is done
};

// What a key names: a path on a mounted volume.
struct Target {
  GlusterHandler* h = nullptr;
  Volume* vol = nullptr;
  std::string volname;
  std::string path;
};

inline int Errno(int fallback = EIO) { return errno ? errno : fallback; }

// Splits key and mounts its volume. Returns 0 or a positive errno with err
// set.
int Resolve(void* state, const char* key, Target* t, char* err, size_t errlen);
// An operator sentence for a failed gfapi call on path (errno).
int PathError(const char* what, const std::string& vol, const std::string& path, char* err,
              size_t errlen);
// Opens t's file with flags into *fd and stats it into *st; refuses
// anything but a regular file.
int OpenRegular(const Target& t, int flags, GlfsFd* fd, struct stat* st, char* err, size_t errlen);

// Snapshots (gluster_snapshots.cc): PATH@NAME files beside PATH, made by a
// server-side copy.
handler_util::SnapshotCreateFn SnapshotCreate;
handler_util::SnapshotDeleteFn SnapshotDelete;
handler_util::SnapshotListFn SnapshotList;
handler_util::SnapshotRollbackFn SnapshotRollback;
handler_util::SnapshotCopyRangesFn SnapshotCopyRanges;
// The snapshots of path on fs (files PATH@NAME), oldest first.
struct SnapshotFile {
  std::string name;
  uint64_t size;
  int64_t created;  // its mtime: written once, when it was taken
};
std::vector<SnapshotFile> SnapshotFiles(glfs_t* fs, const std::string& path);

}  // namespace gluster_backstore
