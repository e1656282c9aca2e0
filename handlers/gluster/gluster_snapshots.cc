// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// Snapshots of gluster backstores. A GlusterFS volume has no snapshot of
// one file (its own snapshots take the whole volume, on thin LVM bricks),
// so snapshot NAME of VOLUME/PATH is the file PATH@NAME beside it: a copy
// of the file's data extents (holes stay holes) through gfapi, made only
// when the operator says 'copy', with its progress logged. It costs the
// space of the data and the time to read and write it once through the
// runner. (glfs_copy_file_range, which would leave the copy to the
// bricks, copied from the wrong offsets here: glusterfs 10.3.) The runner serves it read-only
// as VOLUME/PATH@NAME, which the handler's open finds as that path. A
// rollback copies the snapshot's data back into PATH in place, so PATH
// keeps its gfid (and its identity).
#include <dirent.h>
#include <fcntl.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <string_view>
#include <vector>

#include "handlers/gluster/gluster_backstore.h"
#include "utils/names.h"

namespace gluster_backstore {

namespace {

using handler_util::SetErr;

constexpr uint64_t kCopyChunk = 4 << 20;
constexpr uint64_t kCopyNoteMin = 64 << 20;  // a copy this long logs its progress

// Logs a long copy's progress every tenth of the way (len 0: never).
struct CopyProgress {
  const Target& t;
  uint64_t len;
  uint64_t next_note = len / 10;
  void At(uint64_t pos) {
    if (len < kCopyNoteMin || pos < next_note || pos >= len) return;
    handler_util::Log(t.h->svc, NBDR_LOG_INFO, t.volname + "/" + t.path, "copying: %llu%%",
                      static_cast<unsigned long long>(pos * 100 / len));
    next_note = pos + len / 10;
  }
};

// Copies [off, end) of src into dst at the same offsets.
int CopyBytes(glfs_fd_t* src, glfs_fd_t* dst, uint64_t off, uint64_t end, std::vector<char>* buf,
              CopyProgress* progress) {
  while (off < end) {
    const size_t want = static_cast<size_t>(std::min(end - off, kCopyChunk));
    errno = 0;
    ssize_t n = glfs_pread(src, buf->data(), want, static_cast<off_t>(off), 0, nullptr);
    if (n < 0) return Errno();
    if (n == 0) return EIO;  // the source ended early
    errno = 0;
    if (glfs_pwrite(dst, buf->data(), static_cast<size_t>(n), static_cast<off_t>(off), 0, nullptr,
                    nullptr) != n)
      return Errno();
    off += static_cast<uint64_t>(n);
    progress->At(off);
  }
  return 0;
}

// Copies src's data extents (the first len bytes) into dst at the same
// offsets; dst is len bytes long and sparse. Logs progress every tenth.
int CopyData(const Target& t, glfs_fd_t* src, glfs_fd_t* dst, uint64_t len) {
  CopyProgress progress{t, len};
  auto buf = std::make_unique<std::vector<char>>(kCopyChunk);
  for (uint64_t pos = 0; pos < len;) {
    errno = 0;
    off_t data = glfs_lseek(src, static_cast<off_t>(pos), SEEK_DATA);
    if (data < 0) return errno == ENXIO ? 0 : Errno();
    off_t hole = glfs_lseek(src, data, SEEK_HOLE);
    if (hole < 0) return Errno();
    const uint64_t end = std::min<uint64_t>(static_cast<uint64_t>(hole), len);
    if (int rc = CopyBytes(src, dst, static_cast<uint64_t>(data), end, buf.get(), &progress))
      return rc;
    pos = end;
  }
  return 0;
}

// Makes dst (len bytes from now on) hold what src holds.
int CopyInto(const Target& t, glfs_fd_t* src, glfs_fd_t* dst, uint64_t len) {
  errno = 0;
  if (glfs_ftruncate(dst, 0, nullptr, nullptr) < 0 ||
      glfs_ftruncate(dst, static_cast<off_t>(len), nullptr, nullptr) < 0)
    return Errno();
  if (int rc = CopyData(t, src, dst, len)) return rc;
  errno = 0;
  return glfs_fsync(dst, nullptr, nullptr) < 0 ? Errno() : 0;
}

// t for the snapshot file PATH@NAME of key.
int ResolveSnapshot(void* state, const char* key, const char* name, Target* t, Target* snap,
                    char* err, size_t errlen) {
  if (int rc = Resolve(state, key, t, err, errlen)) return rc;
  *snap = *t;
  snap->path = t->path + "@" + name;
  return 0;
}

// The name a snapshot has while it is made.
std::string PartName(const Target& t, const char* name) { return t.path + "@.part-" + name; }

// Makes the copy in part (open as dst) snapshot snap: read-only (nothing
// is meant to write a snapshot), under its name.
int CompleteSnapshot(const Target& t, const Target& snap, const std::string& part, glfs_fd_t* dst,
                     char* err, size_t errlen) {
  errno = 0;
  if (glfs_fsync(dst, nullptr, nullptr) == 0 && glfs_fchmod(dst, t.h->file_mode & ~0222u) == 0 &&
      glfs_rename(t.vol->fs, part.c_str(), snap.path.c_str()) == 0)
    return 0;
  return PathError("complete", snap.volname, snap.path, err, errlen);
}

}  // namespace

std::vector<SnapshotFile> SnapshotFiles(glfs_t* fs, const std::string& path) {
  std::vector<SnapshotFile> out;
  const size_t slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "/" : path.substr(0, slash);
  const std::string prefix = (slash == std::string::npos ? path : path.substr(slash + 1)) + "@";
  glfs_fd_t* d = glfs_opendir(fs, dir.c_str());
  if (!d) return out;
  while (struct dirent* de = glfs_readdir(d)) {
    std::string_view n = de->d_name;
    if (!n.starts_with(prefix) || !nbdr::IsSnapshotName(n.substr(prefix.size()))) continue;
    struct stat st;
    std::string full = (dir == "/" ? "" : dir + "/") + std::string(n);
    if (glfs_lstat(fs, full.c_str(), &st) < 0 || !S_ISREG(st.st_mode)) continue;
    out.push_back({std::string(n.substr(prefix.size())), static_cast<uint64_t>(st.st_size),
                   static_cast<int64_t>(st.st_mtime)});
  }
  glfs_closedir(d);
  std::sort(out.begin(), out.end(), [](const SnapshotFile& a, const SnapshotFile& b) {
    return a.created != b.created ? a.created < b.created : a.name < b.name;
  });
  return out;
}

int SnapshotCreate(void* state, const char* key, void* /*export_handle*/, const char* name,
                   uint32_t flags, char* err, size_t errlen) {
  Target t, snap;
  if (int rc = ResolveSnapshot(state, key, name, &t, &snap, err, errlen)) return rc;
  GlfsFd src;
  struct stat st;
  if (int rc = OpenRegular(t, O_RDONLY, &src, &st, err, errlen)) return rc;
  if (!(flags & NBDR_SNAPSHOT_COPY)) {
    SetErr(err, errlen,
           "a GlusterFS volume has no snapshot of one file: a snapshot of %s is a copy of its "
           "data (up to %llu bytes) through the runner; say 'copy' to make one",
           key, static_cast<unsigned long long>(st.st_size));
    return ENOTSUP;
  }
  struct stat taken;
  if (glfs_lstat(t.vol->fs, snap.path.c_str(), &taken) == 0) {
    SetErr(err, errlen, "%s already has a snapshot named %s", key, name);
    return EEXIST;
  }
  // Made under a name no snapshot has (it starts with '.'), renamed once
  // complete: PATH@NAME is never a partial copy; a crash leaves only the
  // partial file, which the next attempt removes.
  const std::string part = PartName(t, name);
  glfs_unlink(t.vol->fs, part.c_str());
  errno = 0;
  GlfsFd dst(glfs_creat(t.vol->fs, part.c_str(), O_WRONLY | O_EXCL, t.h->file_mode));
  if (!dst) return PathError("create", snap.volname, part, err, errlen);
  int rc = CopyInto(t, src.get(), dst.get(), static_cast<uint64_t>(st.st_size));
  if (rc) {
    errno = rc;
    PathError("copy to", snap.volname, snap.path, err, errlen);
  } else if (flags & NBDR_SNAPSHOT_UNFINISHED) {
    return 0;  // SnapshotCopyRanges completes it
  } else {
    rc = CompleteSnapshot(t, snap, part, dst.get(), err, errlen);
  }
  if (rc) {
    glfs_unlink(t.vol->fs, part.c_str());
    return rc;
  }
  handler_util::Log(t.h->svc, NBDR_LOG_INFO, key, "snapshot %s: a copy of %llu bytes", name,
                    static_cast<unsigned long long>(st.st_size));
  return 0;
}

int SnapshotCopyRanges(void* state, const char* key, const char* name, const uint64_t* ranges,
                       size_t nranges, uint32_t flags, char* err, size_t errlen) {
  Target t, snap;
  if (int rc = ResolveSnapshot(state, key, name, &t, &snap, err, errlen)) return rc;
  Target part = t;
  part.path = PartName(t, name);
  if (flags & NBDR_SNAPSHOT_DISCARD) {
    errno = 0;
    if (glfs_unlink(t.vol->fs, part.path.c_str()) == 0 || errno == ENOENT) return 0;
    return PathError("remove the unfinished snapshot", part.volname, part.path, err, errlen);
  }
  GlfsFd src, dst;
  struct stat st, made;
  if (int rc = OpenRegular(t, O_RDONLY, &src, &st, err, errlen)) return rc;
  if (int rc = OpenRegular(part, O_WRONLY, &dst, &made, err, errlen)) return rc;
  // The ranges are copied whole, holes as zeroes: they are what clients
  // wrote meanwhile, mostly data.
  CopyProgress quiet{t, 0};
  auto buf = std::make_unique<std::vector<char>>(kCopyChunk);
  for (size_t i = 0; i < nranges; i++) {
    const uint64_t off = ranges[2 * i], len = ranges[2 * i + 1];
    if (off > static_cast<uint64_t>(made.st_size) ||
        len > static_cast<uint64_t>(made.st_size) - off) {
      SetErr(err, errlen, "%s: range %llu+%llu lies past its end", part.path.c_str(),
             static_cast<unsigned long long>(off), static_cast<unsigned long long>(len));
      return EINVAL;
    }
    if (int rc = CopyBytes(src.get(), dst.get(), off, off + len, buf.get(), &quiet)) {
      errno = rc;
      return PathError("copy again to", part.volname, part.path, err, errlen);
    }
  }
  return flags & NBDR_SNAPSHOT_FINISH ? CompleteSnapshot(t, snap, part.path, dst.get(), err, errlen)
                                      : 0;
}

int SnapshotDelete(void* state, const char* key, const char* name, char* err, size_t errlen) {
  Target t, snap;
  if (int rc = ResolveSnapshot(state, key, name, &t, &snap, err, errlen)) return rc;
  struct stat st;
  if (glfs_lstat(t.vol->fs, snap.path.c_str(), &st) < 0 || !S_ISREG(st.st_mode)) {
    SetErr(err, errlen, "%s has no snapshot named %s", key, name);
    return ENOENT;
  }
  errno = 0;
  if (glfs_unlink(t.vol->fs, snap.path.c_str()) < 0)
    return PathError("delete", snap.volname, snap.path, err, errlen);
  return 0;
}

int SnapshotList(void* state, const char* key,
                 void (*each)(void* ctx, const char* name, uint64_t size, int64_t created),
                 void* ctx, char* err, size_t errlen) {
  Target t;
  if (int rc = Resolve(state, key, &t, err, errlen)) return rc;
  struct stat st;
  errno = 0;
  if (glfs_lstat(t.vol->fs, t.path.c_str(), &st) < 0)
    return PathError("stat", t.volname, t.path, err, errlen);
  for (const SnapshotFile& s : SnapshotFiles(t.vol->fs, t.path))
    each(ctx, s.name.c_str(), s.size, s.created);
  return 0;
}

int SnapshotRollback(void* state, const char* key, void* /*export_handle*/, const char* name,
                     uint64_t* size, char* err, size_t errlen) {
  Target t, snap;
  if (int rc = ResolveSnapshot(state, key, name, &t, &snap, err, errlen)) return rc;
  GlfsFd src, dst;
  struct stat st, live;
  if (int rc = OpenRegular(snap, O_RDONLY, &src, &st, err, errlen)) {
    if (rc == ENOENT) SetErr(err, errlen, "%s has no snapshot named %s", key, name);
    return rc;
  }
  // In place, through a descriptor of our own: an open export's sees the
  // same file (its write-behind was flushed before this call).
  if (int rc = OpenRegular(t, O_WRONLY, &dst, &live, err, errlen)) return rc;
  if (int rc = CopyInto(t, src.get(), dst.get(), static_cast<uint64_t>(st.st_size))) {
    errno = rc;
    PathError("roll back", t.volname, t.path, err, errlen);
    handler_util::Log(t.h->svc, NBDR_LOG_ERROR, key,
                      "the rollback to %s stopped partway: the file holds parts of both; roll "
                      "it back again",
                      name);
    return rc;
  }
  *size = static_cast<uint64_t>(st.st_size);
  handler_util::Log(t.h->svc, NBDR_LOG_INFO, key, "rolled back to snapshot %s", name);
  return 0;
}

}  // namespace gluster_backstore
