// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// The gluster handler (libgluster_handler.so): backstores are files on
// GlusterFS volumes, reached through libgfapi (no FUSE mount).
//
// Key VOLUME/PATH. One glfs_t per volume per runner, made on first use and
// shared by every backstore and connection of that volume until the runner
// exits (glfs_fini takes 10 s, so the exit unmounts). Every server in
// gluster-hosts is handed to gfapi as a volfile server, so fetching the
// volume layout survives the loss of one of them.
//
// I/O: reads, writes, flush, trim and write-zeroes are gfapi asynchronous
// calls that complete on gfapi's threads. Work with no asynchronous form
// (extents through glfs_lseek, the fdatasync of a FUA request) runs on a
// small worker pool of the volume's, so submit never blocks and a volume
// whose bricks stall holds up none of the others.
//
// Thread-safety: every callback may be called from any runner thread.
#include <fcntl.h>
#include <glusterfs/api/glfs-handles.h>
#include <glusterfs/api/glfs.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "handlers/common/handler_util.h"
#include "handlers/gluster/gluster_backstore.h"
#include "nbd-runner/handler.h"

namespace {

// Owners of gfapi handles (glfs_fini of a mounted volume takes seconds:
// a volume's owner is its Volume, made once per volume).
struct GlfsFini {
  void operator()(glfs_t* fs) const { glfs_fini(fs); }
};
using Glfs = std::unique_ptr<glfs_t, GlfsFini>;

using handler_util::SetErr;
using namespace gluster_backstore;  // NOLINT: this handler's own parts

struct GlusterExport {
  GlusterHandler* h;
  Volume* vol;
  std::string key;
  glfs_fd_t* fd;  // all I/O
  uint64_t size;
  // SEEK_DATA/SEEK_HOLE go through a descriptor of their own, one lookup
  // at a time: glfs_lseek returns the descriptor's shared offset, which
  // every read and write completing on it also sets.
  glfs_fd_t* seek_fd;
  nbdr::Mutex seek_mu{};
  // Writes acknowledged since the last fdatasync. Write-behind holds them
  // where a seek (which it passes straight to the bricks) does not look,
  // so an allocation lookup first makes them reach the bricks.
  std::atomic<bool> unsynced_writes{false};
  handler_util::FailedRequestLog failures{};
};

// Splits "vol/dir/file.img" into the volume name and the path inside it.
bool SplitKey(const char* key, std::string* volume, std::string* path, char* err, size_t errlen) {
  std::string k = key;
  size_t slash = k.find('/');
  if (slash == std::string::npos || slash == 0 || slash + 1 == k.size()) {
    SetErr(err, errlen, "key '%s' must be VOLUME/PATH, e.g. vol1/disks/a.img", key);
    return false;
  }
  *volume = k.substr(0, slash);
  *path = k.substr(slash + 1);
  for (char c : *volume) {
    if (!isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_') {
      SetErr(err, errlen, "'%s' is not a gluster volume name (letters, digits, - and _)",
             volume->c_str());
      return false;
    }
  }
  for (size_t pos = 0; pos <= path->size();) {
    size_t next = path->find('/', pos);
    if (next == std::string::npos) next = path->size();
    std::string comp = path->substr(pos, next - pos);
    if (comp.empty() || comp == "." || comp == "..") {
      SetErr(err, errlen, "key '%s': empty, '.' or '..' path components are not allowed", key);
      return false;
    }
    pos = next + 1;
  }
  return true;
}

// Parses "h1,h2:24008,[::1]:24007" into volfile servers.
bool ParseServers(const std::string& text, std::vector<VolfileServer>* out, std::string* why) {
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t comma = text.find(',', pos);
    if (comma == std::string::npos) comma = text.size();
    std::string item = text.substr(pos, comma - pos);
    pos = comma + 1;
    item.erase(0, item.find_first_not_of(" \t"));
    item.erase(item.find_last_not_of(" \t") + 1);
    if (item.empty()) {
      *why = "empty host in '" + text + "'";
      return false;
    }
    VolfileServer s;
    std::string port;
    if (item[0] == '[') {
      size_t close = item.find(']');
      if (close == std::string::npos) {
        *why = "'" + item + "': unterminated [";
        return false;
      }
      s.host = item.substr(1, close - 1);
      if (close + 1 < item.size()) {
        if (item[close + 1] != ':') {
          *why = "'" + item + "': expected :PORT after ]";
          return false;
        }
        port = item.substr(close + 2);
      }
    } else if (std::count(item.begin(), item.end(), ':') == 1) {
      s.host = item.substr(0, item.find(':'));
      port = item.substr(item.find(':') + 1);
    } else {
      s.host = item;  // a name, IPv4, or a bare IPv6 address
    }
    if (!port.empty()) {
      long p = handler_util::ParseIntOption(port.c_str(), 0, 1, 65535);
      if (p < 0) {
        *why = "'" + item + "': port must be 1-65535";
        return false;
      }
      s.port = static_cast<int>(p);
    }
    out->push_back(s);
  }
  return true;
}

// Mounts volume name (glfs_new to glfs_init, slow: a stalled volfile
// server or brick holds it for the ping timeout). nullptr, rc and err on
// failure.
glfs_t* MountVolume(GlusterHandler* h, const std::string& name, std::string* log_file, char* err,
                    size_t errlen, int* rc) {
  handler_util::Log(h->svc, NBDR_LOG_INFO, name, "mounting gluster volume through %s",
                    h->hosts_text.c_str());
  Glfs fs(glfs_new(name.c_str()));  // fini on every failure below
  if (!fs) {
    *rc = Errno(ENOMEM);
    SetErr(err, errlen, "volume '%s': glfs_new: %s", name.c_str(), strerror(*rc));
    return nullptr;
  }
  for (const auto& s : h->servers) {
    if (glfs_set_volfile_server(fs.get(), "tcp", s.host.c_str(), s.port) < 0) {
      *rc = Errno();
      SetErr(err, errlen, "volume '%s': volfile server %s:%d: %s", name.c_str(), s.host.c_str(),
             s.port, strerror(*rc));
      return nullptr;
    }
  }
  *log_file = h->log_dir.empty() ? "/dev/stderr" : h->log_dir + "/gluster-" + name + ".log";
  glfs_set_logging(fs.get(), log_file->c_str(), h->gfapi_log_level);
  std::string timeout = std::to_string(h->timeout_s);
  // A brick that stops answering fails its requests after timeout_s.
  glfs_set_xlator_option(fs.get(), "*-client-*", "ping-timeout", timeout.c_str());
  // A request that a live brick leaves unanswered (its disk hangs while the
  // process still answers pings) is given up after frame-timeout, checked
  // every 10 s: the volume's network.frame-timeout (1800 s by default)
  // unless the operator chose gluster-request-timeout. Given up is not
  // cancelled: the brick may still carry out such a write later.
  if (h->request_timeout_s > 0) {
    std::string frame_timeout = std::to_string(h->request_timeout_s);
    glfs_set_xlator_option(fs.get(), "*-client-*", "frame-timeout", frame_timeout.c_str());
  }
  // Keep writes that failed in write-behind until a later fsync succeeds,
  // rather than dropping them after reporting the error once.
  glfs_set_xlator_option(fs.get(), "*-write-behind", "resync-failed-syncs-after-fsync", "on");
  // A write is answered only once it has left this process: the
  // descriptors opened for serving carry O_DIRECT, which write-behind then
  // passes straight down instead of holding (strict-O_DIRECT), and which
  // the client protocol strips before the bricks (filter-O_DIRECT, as the
  // volume option network.remote-dio does). A runner that dies then takes
  // no answered write with it: a kernel mapping that reconnects, or fails
  // over, sends its next flush to another process, which could not flush
  // what this one held (tests/integration/backstore/kill-after-ack.sh).
  glfs_set_xlator_option(fs.get(), "*-write-behind", "strict-O_DIRECT", "on");
  glfs_set_xlator_option(fs.get(), "*-client-*", "filter-O_DIRECT", "on");
  // The runner's connection threads already submit requests in parallel:
  // the client-side io-threads a volume may load (client-io-threads) would
  // only add a thread hand-off per request, which costs 12-20 % of the 4K
  // IOPS on two cores. Pass-through sends each request down in the thread
  // that submitted it.
  glfs_set_xlator_option(fs.get(), "*-io-threads", "pass-through", "true");

  auto started = std::chrono::steady_clock::now();
  if (glfs_init(fs.get()) < 0) {
    int e = Errno();
    *rc = e == ENOENT ? ENOENT : EHOSTUNREACH;
    // A refused connection fails at once; a mount that waited on bricks
    // took about the timeout (half of it leaves room for a busy host).
    bool waited = std::chrono::steady_clock::now() - started >=
                  std::chrono::milliseconds(std::max<long>(1000, h->timeout_s * 500));
    if (e == ENOENT)
      SetErr(err, errlen, "gluster volume '%s' does not exist (servers %s)", name.c_str(),
             h->hosts_text.c_str());
    else if (waited)
      SetErr(err, errlen,
             "cannot mount gluster volume '%s': glusterd unreachable at %s, or the volume's "
             "bricks did not answer within %ld s (%s)",
             name.c_str(), h->hosts_text.c_str(), h->timeout_s, strerror(e));
    else
      SetErr(err, errlen, "cannot mount gluster volume '%s': glusterd unreachable at %s (%s)",
             name.c_str(), h->hosts_text.c_str(), strerror(e));
    // A failed init still needs fini (fs's owner does it); it is quick
    // for an unmounted volume.
    return nullptr;
  }
  return fs.release();
}

// Returns the mounted volume, mounting it on first use. A mount runs
// without the handler's lock, so backstores on volumes already mounted
// (and mounts of other volumes) go on meanwhile; callers for the volume
// being mounted wait for that one mount and share its result.
Volume* GetVolume(GlusterHandler* h, const std::string& name, char* err, size_t errlen, int* rc) {
  nbdr::MutexLock l(&h->mu);
  if (auto it = h->volumes.find(name); it != h->volumes.end()) return it->second.get();
  if (auto it = h->mounting.find(name); it != h->mounting.end()) {
    std::shared_ptr<GlusterHandler::MountAttempt> attempt = it->second;
    l.Wait(&h->mount_done, [&] { return attempt->done; });
    if (auto v = h->volumes.find(name); v != h->volumes.end()) return v->second.get();
    *rc = attempt->rc;
    SetErr(err, errlen, "%s", attempt->err.c_str());
    return nullptr;
  }
  auto attempt = std::make_shared<GlusterHandler::MountAttempt>();
  h->mounting[name] = attempt;
  l.Unlock();
  std::string log_file;
  glfs_t* fs = MountVolume(h, name, &log_file, err, errlen, rc);
  l.Relock();
  h->mounting.erase(name);
  attempt->done = true;
  if (!fs) {
    attempt->rc = *rc;
    attempt->err = err;
    h->mount_done.notify_all();
    return nullptr;
  }
  auto vol = std::make_unique<Volume>();
  vol->name = name;
  vol->fs = fs;
  vol->pool = std::make_unique<handler_util::WorkerPool>(kPoolThreadsPerVolume);
  Volume* raw = vol.get();
  h->volumes[name] = std::move(vol);
  h->mount_done.notify_all();
  handler_util::Log(h->svc, NBDR_LOG_INFO, name, "mounted gluster volume through %s (log %s)",
                    h->hosts_text.c_str(), log_file.c_str());
  return raw;
}

}  // namespace

namespace gluster_backstore {

int Resolve(void* state, const char* key, Target* t, char* err, size_t errlen) {
  t->h = static_cast<GlusterHandler*>(state);
  if (!SplitKey(key, &t->volname, &t->path, err, errlen)) return EINVAL;
  int rc = 0;
  t->vol = GetVolume(t->h, t->volname, err, errlen, &rc);
  return t->vol ? 0 : rc;
}

int PathError(const char* what, const std::string& vol, const std::string& path, char* err,
              size_t errlen) {
  int e = Errno();
  switch (e) {
    case EEXIST:
      SetErr(err, errlen, "%s already exists on volume '%s'", path.c_str(), vol.c_str());
      break;
    case ENOENT:
      SetErr(err, errlen, "%s does not exist on volume '%s'", path.c_str(), vol.c_str());
      break;
    case ENOSPC:
      SetErr(err, errlen, "%s %s on volume '%s': no space left on the volume", what, path.c_str(),
             vol.c_str());
      break;
    case EACCES:
    case EPERM:
      SetErr(err, errlen, "%s %s on volume '%s': permission denied", what, path.c_str(),
             vol.c_str());
      break;
    case ENOTCONN:
      SetErr(err, errlen, "%s %s on volume '%s': the bricks are unreachable", what, path.c_str(),
             vol.c_str());
      break;
    default:
      SetErr(err, errlen, "%s %s on volume '%s': %s", what, path.c_str(), vol.c_str(), strerror(e));
  }
  return e;
}

}  // namespace gluster_backstore

namespace {

// Makes every missing parent directory of path, with dir_mode.
int MakeParents(Volume* v, const std::string& path, unsigned dir_mode, char* err, size_t errlen) {
  for (size_t slash = path.find('/'); slash != std::string::npos;
       slash = path.find('/', slash + 1)) {
    std::string dir = path.substr(0, slash);
    errno = 0;
    if (glfs_mkdir(v->fs, dir.c_str(), dir_mode) < 0 && errno != EEXIST)
      return PathError("make directory", v->name, dir, err, errlen);
  }
  return 0;
}

// ---- handler callbacks --------------------------------------------------

int GlusterLoad(const nbdr_services* svc, void** state, char* err, size_t errlen) {
  auto h = std::make_unique<GlusterHandler>();
  h->svc = svc;
  const char* hosts = svc->get_option(svc->ctx, "gluster-hosts");
  h->hosts_text = hosts && *hosts ? hosts : "localhost";
  std::string why;
  if (!ParseServers(h->hosts_text, &h->servers, &why)) {
    SetErr(err, errlen, "gluster-hosts: %s", why.c_str());
    return EINVAL;
  }
  // The client translator's ping-timeout takes at most 1013 s; beyond
  // that every mount would fail.
  h->timeout_s = handler_util::ParseIntOption(svc->get_option(svc->ctx, "gluster-timeout"),
                                              kDefaultTimeoutSeconds, 1, 1013);
  if (h->timeout_s < 0) {
    SetErr(err, errlen, "gluster-timeout: '%s' is not a number of seconds from 1 to 1013",
           svc->get_option(svc->ctx, "gluster-timeout"));
    return EINVAL;
  }
  h->request_timeout_s = handler_util::ParseIntOption(
      svc->get_option(svc->ctx, "gluster-request-timeout"), 0, 1, kMaxFrameTimeoutSeconds);
  if (h->request_timeout_s < 0) {
    SetErr(err, errlen, "gluster-request-timeout: '%s' is not a number of seconds from 1 to %ld",
           svc->get_option(svc->ctx, "gluster-request-timeout"), kMaxFrameTimeoutSeconds);
    return EINVAL;
  }
  if (int rc =
          handler_util::LoadFileModeOption(svc, "gluster-file-mode", &h->file_mode, err, errlen))
    return rc;
  if (const char* d = svc->get_option(svc->ctx, NBDR_OPTION_LOG_DIR); d && *d) h->log_dir = d;
  if (const char* l = svc->get_option(svc->ctx, "gluster-log-level"); l && *l) {
    h->gfapi_log_level = -1;
    for (const auto& lv : kGlusterLogLevels)
      if (!strcmp(l, lv.name)) h->gfapi_log_level = lv.level;
    if (h->gfapi_log_level < 0) {
      SetErr(err, errlen, "gluster-log-level: '%s' is not error, warning, info, debug or trace", l);
      return EINVAL;
    }
  }
  std::string request_timeout = h->request_timeout_s > 0
                                    ? std::to_string(h->request_timeout_s) + " s"
                                    : std::string("the volume's frame-timeout");
  handler_util::Log(svc, NBDR_LOG_INFO, "",
                    "volfile servers %s, brick timeout %ld s, request timeout %s",
                    h->hosts_text.c_str(), h->timeout_s, request_timeout.c_str());
  *state = h.release();
  return 0;
}

// Volumes left mounted for the process exit (see GlusterUnload); kept
// reachable, for they are not leaked: gfapi's threads still use them.
GlusterHandler* volatile left_to_exit = nullptr;

// The runner unloads a handler only as it stops, after every export has
// closed: each glfs_close already flushed what write-behind held. What
// glfs_fini would add is a disconnect from the bricks, and gfapi spends
// 10 s in it whatever the volume (glusterfs issue 2606, closed wontfix).
// The process exit disconnects at once, and the bricks release the
// connection as they do for any client that goes away. So the volumes
// stay mounted, and this library and gfapi mapped, until the exit.
void GlusterUnload(void* state) {
  auto* h = static_cast<GlusterHandler*>(state);
  for (auto& [name, vol] : h->volumes) vol->pool.reset();
  if (!h->volumes.empty() &&
      handler_util::KeepLoadedUntilExit(reinterpret_cast<void*>(&GlusterUnload))) {
    left_to_exit = h;
    return;
  }
  // Not pinned (it cannot be unmapped under gfapi's threads): unmount the
  // volumes side by side.
  std::vector<std::thread> finis;
  for (auto& [name, vol] : h->volumes) finis.emplace_back([fs = vol->fs] { glfs_fini(fs); });
  for (auto& t : finis) t.join();
  delete h;
}

int GlusterCreate(void* state, const char* key, const nbdr_create_params* p, char* err,
                  size_t errlen) {
  Target t;
  if (int rc = Resolve(state, key, &t, err, errlen)) return rc;
  GlusterHandler* h = t.h;
  Volume* v = t.vol;
  const std::string &volname = t.volname, &path = t.path;
  int rc = 0;

  struct statvfs vfs;
  if (glfs_statvfs(v->fs, "/", &vfs) == 0) {
    uint64_t avail = static_cast<uint64_t>(vfs.f_bavail) * vfs.f_frsize;
    if (p->prealloc && avail < p->size) {
      SetErr(err, errlen, "not enough space on volume '%s' to preallocate %llu bytes (%llu free)",
             volname.c_str(), static_cast<unsigned long long>(p->size),
             static_cast<unsigned long long>(avail));
      return ENOSPC;
    }
    if (avail < p->size)
      handler_util::Log(h->svc, NBDR_LOG_WARNING, key,
                        "sparse backstore of %llu bytes is larger than the %llu bytes free on "
                        "volume '%s'",
                        static_cast<unsigned long long>(p->size),
                        static_cast<unsigned long long>(avail), volname.c_str());
  }
  if ((rc = MakeParents(v, path, handler_util::DirModeFor(h->file_mode), err, errlen))) return rc;
  errno = 0;
  GlfsFd fd(glfs_creat(v->fs, path.c_str(), O_RDWR | O_EXCL, h->file_mode));
  if (!fd) return PathError("create", volname, path, err, errlen);
  errno = 0;
  if (p->prealloc) {
    if (glfs_fallocate(fd.get(), 0, 0, p->size) < 0)
      rc = PathError("preallocate", volname, path, err, errlen);
  } else if (glfs_ftruncate(fd.get(), static_cast<off_t>(p->size), nullptr, nullptr) < 0) {
    rc = PathError("size", volname, path, err, errlen);
  }
  if (!rc && glfs_fsync(fd.get(), nullptr, nullptr) < 0)
    rc = PathError("sync", volname, path, err, errlen);
  fd.reset();
  if (rc) {
    glfs_unlink(v->fs, path.c_str());
    return rc;
  }
  handler_util::Log(h->svc, NBDR_LOG_INFO, key, "created %llu bytes%s",
                    static_cast<unsigned long long>(p->size), p->prealloc ? " (preallocated)" : "");
  return 0;
}

int GlusterRemove(void* state, const char* key, char* err, size_t errlen) {
  Target t;
  if (int rc = Resolve(state, key, &t, err, errlen)) return rc;
  const std::string &volname = t.volname, &path = t.path;
  struct stat st;
  errno = 0;
  if (glfs_lstat(t.vol->fs, path.c_str(), &st) < 0)
    return PathError("stat", volname, path, err, errlen);
  // A symlink key (served through its target) is removed as the link,
  // as the file handler does: the file it points to stays.
  if (!S_ISREG(st.st_mode) && !S_ISLNK(st.st_mode)) {
    SetErr(err, errlen, "%s on volume '%s' is not a regular file", path.c_str(), volname.c_str());
    return EINVAL;
  }
  if (auto snaps = SnapshotFiles(t.vol->fs, path); !snaps.empty()) {
    SetErr(err, errlen, "%s has %zu snapshot(s), %s first: delete them before it", key,
           snaps.size(), snaps.front().name.c_str());
    return EBUSY;
  }
  errno = 0;
  if (glfs_unlink(t.vol->fs, path.c_str()) < 0)
    return PathError("delete", volname, path, err, errlen);
  return 0;
}

}  // namespace

namespace gluster_backstore {

int OpenRegular(const Target& t, int flags, GlfsFd* fd, struct stat* st, char* err, size_t errlen) {
  errno = 0;
  fd->reset(glfs_open(t.vol->fs, t.path.c_str(), flags));
  if (!*fd) return PathError("open", t.volname, t.path, err, errlen);
  errno = 0;
  if (glfs_fstat(fd->get(), st) < 0) return PathError("stat", t.volname, t.path, err, errlen);
  if (!S_ISREG(st->st_mode)) {
    SetErr(err, errlen, "%s on volume '%s' is not a regular file", t.path.c_str(),
           t.volname.c_str());
    return EINVAL;
  }
  return 0;
}

}  // namespace gluster_backstore

namespace {

// Sets the file's length (a grow leaves a sparse tail) and syncs it.
int GlusterExportSize(void* export_handle, uint64_t* size, char* err, size_t errlen) {
  auto* e = static_cast<GlusterExport*>(export_handle);
  struct stat st;
  errno = 0;
  if (glfs_fstat(e->fd, &st) < 0) {
    int rc = Errno();
    SetErr(err, errlen, "%s: %s", e->key.c_str(), strerror(rc));
    return rc;
  }
  *size = static_cast<uint64_t>(st.st_size);
  return 0;
}

int GlusterResize(void* state, const char* key, uint64_t size, int may_shrink, char* err,
                  size_t errlen) {
  Target t;
  if (int rc = Resolve(state, key, &t, err, errlen)) return rc;
  GlfsFd fd;
  struct stat st;
  if (int rc = OpenRegular(t, O_WRONLY, &fd, &st, err, errlen)) return rc;
  if (int rc = handler_util::RefuseHiddenShrink(may_shrink, static_cast<uint64_t>(st.st_size), size,
                                                key, err, errlen))
    return rc;
  errno = 0;
  if (glfs_ftruncate(fd.get(), static_cast<off_t>(size), nullptr, nullptr) < 0 ||
      glfs_fsync(fd.get(), nullptr, nullptr) < 0)
    return PathError("resize", t.volname, t.path, err, errlen);
  return 0;
}

int GlusterOpen(void* state, const char* key, int readonly, nbdr_export_info* info,
                void** export_handle, char* err, size_t errlen) {
  Target t;
  if (int rc = Resolve(state, key, &t, err, errlen)) return rc;
  const std::string &volname = t.volname, &path = t.path;
  // O_DIRECT, so that write-behind (strict-O_DIRECT, set at connect)
  // answers a write only once the bricks have it; the bricks themselves
  // get no O_DIRECT (filter-O_DIRECT) and keep their page cache.
  GlfsFd fd;
  struct stat st;
  if (int rc = OpenRegular(t, readonly ? O_RDONLY : O_RDWR | O_DIRECT, &fd, &st, err, errlen))
    return rc;
  errno = 0;
  GlfsFd seek_fd(glfs_open(t.vol->fs, path.c_str(), O_RDONLY));
  if (!seek_fd) return PathError("open", volname, path, err, errlen);
  auto* e = new GlusterExport{
      t.h, t.vol, key, fd.release(), static_cast<uint64_t>(st.st_size), seek_fd.release()};
  info->size = e->size;
  // No FAST_ZERO: zerofill may fall back to writing zeroes on the brick.
  info->caps = NBDR_CAP_FLUSH | NBDR_CAP_FUA | NBDR_CAP_TRIM | NBDR_CAP_WRITE_ZEROES |
               NBDR_CAP_MULTI_CONN | NBDR_CAP_EXTENTS;
  *export_handle = e;
  return 0;
}

// 16 bytes as a UUID string.
std::string UuidText(const unsigned char* b) {
  char out[37];
  snprintf(out, sizeof out, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
           b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
           b[14], b[15]);
  return out;
}

// The volume's UUID and the file's GFID: a volume made again, or a file
// deleted and made again under the same name, has new ones.
int GlusterIdentify(void* state, const char* key, char* buf, size_t buflen, char* err,
                    size_t errlen) {
  Target t;
  if (int rc = Resolve(state, key, &t, err, errlen)) return rc;
  unsigned char volid[16];
  errno = 0;
  if (glfs_get_volumeid(t.vol->fs, reinterpret_cast<char*>(volid), sizeof volid) != sizeof volid) {
    SetErr(err, errlen, "volume '%s': cannot read its volume id", t.volname.c_str());
    return EIO;
  }
  struct stat st;
  errno = 0;
  // Follows symlinks, as open does: the identity is the file served.
  glfs_object_t* obj = glfs_h_lookupat(t.vol->fs, nullptr, t.path.c_str(), &st, 1);
  if (!obj) return PathError("look up", t.volname, t.path, err, errlen);
  unsigned char gfid[GFAPI_HANDLE_LENGTH];
  int n = glfs_h_extract_handle(obj, gfid, sizeof gfid);
  glfs_h_close(obj);
  if (n != GFAPI_HANDLE_LENGTH) {
    SetErr(err, errlen, "%s on volume '%s': cannot read its gfid", t.path.c_str(),
           t.volname.c_str());
    return EIO;
  }
  snprintf(buf, buflen, "{\"volume_id\":\"%s\",\"gfid\":\"%s\"}", UuidText(volid).c_str(),
           UuidText(gfid).c_str());
  return 0;
}

void GlusterClose(void* export_handle) {
  auto* e = static_cast<GlusterExport*>(export_handle);
  e->failures.Flush(e->h->svc, e->key);
  // glfs_close flushes what write-behind still holds; a failure there is
  // data the client wrote but never flushed, and nobody is left to tell.
  errno = 0;
  if (glfs_close(e->fd) < 0)
    handler_util::Log(e->h->svc, NBDR_LOG_ERROR, e->key,
                      "close: %s; writes the client did not flush may be lost", strerror(Errno()));
  glfs_close(e->seek_fd);
  delete e;
}

// ---- I/O ----------------------------------------------------------------

// Describes allocation from r->offset with SEEK_DATA/SEEK_HOLE.
int Extents(GlusterExport* e, nbdr_request* r) {
  // One lookup at a time, so none seeks while another's sync is under way.
  nbdr::MutexLock lock(&e->seek_mu);
  if (e->unsynced_writes.exchange(false)) {
    errno = 0;
    if (glfs_fdatasync(e->fd, nullptr, nullptr) < 0) {
      e->unsynced_writes = true;
      return Errno();
    }
  }
  // The runner keeps requests inside the export, whose size a resize
  // changes: no end of our own.
  return handler_util::FillExtents(r, UINT64_MAX, [e](uint64_t pos, int whence) -> int64_t {
    return glfs_lseek(e->seek_fd, static_cast<off_t>(pos), whence);
  });
}

// The completion of every asynchronous gfapi call: checks the byte count
// of reads and writes, then completes the request, or first makes it
// durable on the worker pool when it carries FUA.
void OnGfapiDone(glfs_fd_t*, ssize_t ret, struct glfs_stat*, struct glfs_stat*, void* data) {
  int err = ret < 0 ? Errno() : 0;
  auto* r = static_cast<nbdr_request*>(data);
  auto* e = static_cast<GlusterExport*>(r->handler_private);
  if (!err && (r->type == NBDR_REQ_READ || r->type == NBDR_REQ_WRITE) &&
      static_cast<uint64_t>(ret) != r->length)
    err = EIO;                                                 // the file shrank under us
  if (err == EOPNOTSUPP && r->type == NBDR_REQ_TRIM) err = 0;  // trim is advisory
  if (err && err != ENOSPC && err != EDQUOT)
    e->failures.Note(e->h->svc, e->key, r->type, r->offset, err);
  if (!err && r->type != NBDR_REQ_READ && r->type != NBDR_REQ_FLUSH)
    e->unsynced_writes = true;  // set before the client can hear of it
  if (!err && (r->flags & NBDR_REQ_FLAG_FUA) && r->type != NBDR_REQ_FLUSH) {
    e->vol->pool->Submit([e, r] {
      errno = 0;
      r->complete(r, glfs_fdatasync(e->fd, nullptr, nullptr) < 0 ? Errno() : 0);
    });
    return;
  }
  r->complete(r, err);
}

void GlusterSubmit(void* export_handle, nbdr_request* r) {
  auto* e = static_cast<GlusterExport*>(export_handle);
  r->handler_private = e;
  iovec iov{r->buf, r->length};
  int rc = 0;
  errno = 0;
  switch (r->type) {
    case NBDR_REQ_READ:
      rc = glfs_preadv_async(e->fd, &iov, 1, static_cast<off_t>(r->offset), 0, OnGfapiDone, r);
      break;
    case NBDR_REQ_WRITE:
      rc = glfs_pwritev_async(e->fd, &iov, 1, static_cast<off_t>(r->offset), 0, OnGfapiDone, r);
      break;
    case NBDR_REQ_FLUSH:
      rc = glfs_fdatasync_async(e->fd, OnGfapiDone, r);
      break;
    case NBDR_REQ_TRIM:
      rc = glfs_discard_async(e->fd, static_cast<off_t>(r->offset), r->length, OnGfapiDone, r);
      break;
    case NBDR_REQ_WRITE_ZEROES:
      rc = glfs_zerofill_async(e->fd, static_cast<off_t>(r->offset), static_cast<off_t>(r->length),
                               OnGfapiDone, r);
      break;
    case NBDR_REQ_EXTENTS:
      e->vol->pool->Submit([e, r] { r->complete(r, Extents(e, r)); });
      return;
    default:
      r->complete(r, EINVAL);
      return;
  }
  if (rc < 0) r->complete(r, Errno());
}

const char* const kOptions[] = {"gluster-hosts",     "gluster-timeout",   "gluster-request-timeout",
                                "gluster-log-level", "gluster-file-mode", nullptr};

const nbdr_handler kGlusterHandler = {
    sizeof(nbdr_handler),
    NBDR_HANDLER_ABI_VERSION,
    "gluster",
    "files on GlusterFS volumes through libgfapi",
    NBDR_PACKAGE_VERSION,
    "gluster-hosts=H1[:PORT],H2,...  volfile servers (glusterd), all tried in turn "
    "(default localhost)\n"
    "gluster-timeout=SECONDS         a brick that stops answering fails I/O with EIO after this "
    "long (default 30)\n"
    "gluster-request-timeout=SECONDS a request a live brick leaves unanswered fails with EIO "
    "after this long (default: the volume's frame-timeout, 1800)\n"
    "gluster-log-level=LEVEL         gfapi's own log, <log-dir>/gluster-VOLUME.log: error, "
    "warning (default), info, debug, trace\n"
    "gluster-file-mode=MODE          permissions of the files create makes (default 0600; "
    "0600 to 0666), and of the directories it makes for them (0700 for 0600)\n",
    kOptions,
    GlusterLoad,
    GlusterUnload,
    GlusterCreate,
    GlusterRemove,
    GlusterOpen,
    GlusterClose,
    GlusterSubmit,
    GlusterIdentify,
    nullptr,  // take_over: no fence of its own; the runner's fencing applies
    GlusterResize,
    SnapshotCreate,
    SnapshotDelete,
    SnapshotList,
    SnapshotRollback,
    SnapshotCopyRanges,
    GlusterExportSize,
};

}  // namespace

extern "C" NBDR_HANDLER_EXPORT const nbdr_handler* handler_init(const nbdr_services* svc) {
  (void)svc;
  return &kGlusterHandler;
}
