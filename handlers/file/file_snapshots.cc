// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// Snapshots of file backstores. Snapshot NAME of KEY is the file KEY@NAME
// beside KEY, made read-only: a reflink (FICLONE: the blocks are shared
// and copied on write, so it takes no time and no space) where the file
// system has them (XFS, btrfs); elsewhere only when the operator asks for
// a copy (NBDR_SNAPSHOT_COPY), which copies the data extents and keeps
// holes. The runner serves it read-only as file/KEY@NAME, which the
// handler's open finds as that path. A rollback puts the snapshot's data
// back into KEY in place, so KEY keeps its inode (and its identity).
#include <dirent.h>
#include <linux/fs.h>
#include <sys/ioctl.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "handlers/file/file_backstore.h"
#include "utils/names.h"

namespace file_backstore {

namespace {

using handler_util::SetErr;

constexpr uint64_t kCopyChunk = 8 << 20;
constexpr uint64_t kCopyNoteMin = 64 << 20;  // a copy this long logs its progress

// KEY's directory under the base, and the file names of KEY and KEY@NAME.
struct SnapshotPath {
  UniqueFd dir;
  std::string base;
  std::string snap;
};

int OpenSnapshotPath(const FileHandler* h, const char* key, const char* name, SnapshotPath* p,
                     char* err, size_t errlen) {
  std::string dir;
  SplitKey(key, &dir, &p->base);
  p->snap = p->base + "@" + name;
  p->dir = UniqueFd(OpenDir(const_cast<FileHandler*>(h), dir, nullptr, O_RDONLY));
  if (p->dir.valid()) return 0;
  int e = Errno();
  SetErr(err, errlen, "directory of %s under %s: %s", key, h->base_path.c_str(),
         e == EXDEV ? "leaves the base directory" : strerror(e));
  return e == EXDEV ? EPERM : e;
}

bool CloneUnsupported(int e) {
  return e == EOPNOTSUPP || e == ENOTTY || e == EXDEV || e == EINVAL || e == ENOSYS;
}

// Logs a long copy's progress every tenth of the way.
struct CopyProgress {
  const FileHandler* h;
  const std::string& what;
  uint64_t len;
  uint64_t next_note = len / 10;
  void At(uint64_t pos) {
    if (len < kCopyNoteMin || pos < next_note || pos >= len) return;
    handler_util::Log(h->svc, NBDR_LOG_INFO, what, "copying: %llu%%",
                      static_cast<unsigned long long>(pos * 100 / len));
    next_note = pos + len / 10;
  }
};

// Copies [off, end) from src to dst at the same offsets: copy_file_range,
// or read and write where the file system refuses it.
int CopyRange(int src, int dst, uint64_t off, uint64_t end, std::vector<char>* buf,
              CopyProgress* progress) {
  while (off < end) {
    const uint64_t n = std::min(end - off, kCopyChunk);
    ssize_t done = -1;
    if (buf->empty()) {
      loff_t in = static_cast<loff_t>(off), out = static_cast<loff_t>(off);
      done = copy_file_range(src, &in, dst, &out, n, 0);
      if (done < 0 && errno == EINTR) continue;
      if (done < 0 && !CloneUnsupported(errno)) return Errno();
      if (done < 0) buf->resize(kCopyChunk);
    }
    if (!buf->empty()) {
      done = pread(src, buf->data(), n, static_cast<off_t>(off));
      if (done < 0 && errno == EINTR) continue;
      if (done < 0) return Errno();
      for (ssize_t put = 0; put < done;) {
        ssize_t w = pwrite(dst, buf->data() + put, static_cast<size_t>(done - put),
                           static_cast<off_t>(off) + put);
        if (w < 0 && errno != EINTR) return Errno();
        if (w > 0) put += w;
      }
    }
    if (done == 0) return EIO;  // the source ended early
    off += static_cast<uint64_t>(done);
    progress->At(off);
  }
  return 0;
}

// Copies src's data extents in [from, to) into dst, where that range
// reads as zeroes: holes stay holes.
int CopyData(int src, int dst, uint64_t from, uint64_t to, CopyProgress* progress) {
  std::vector<char> buf;
  for (uint64_t pos = from; pos < to;) {
    off_t data = lseek(src, static_cast<off_t>(pos), SEEK_DATA);
    if (data < 0) return errno == ENXIO ? 0 : Errno();
    if (static_cast<uint64_t>(data) >= to) return 0;
    off_t hole = lseek(src, data, SEEK_HOLE);
    if (hole < 0) return Errno();
    const uint64_t end = std::min<uint64_t>(static_cast<uint64_t>(hole), to);
    if (int rc = CopyRange(src, dst, static_cast<uint64_t>(data), end, &buf, progress)) return rc;
    pos = end;
  }
  return 0;
}

// Copies [off, off+len) of src into dst again, holes included: the range
// is emptied first (or, where holes cannot be punched, copied whole).
int CopyAgain(const FileHandler* h, const std::string& what, int src, int dst, uint64_t off,
              uint64_t len) {
  CopyProgress quiet{h, what, 0};
  if (fallocate(dst, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(off),
                static_cast<off_t>(len)) == 0)
    return CopyData(src, dst, off, off + len, &quiet);
  if (!CloneUnsupported(errno)) return Errno();
  std::vector<char> buf;
  return CopyRange(src, dst, off, off + len, &buf, &quiet);
}

// Makes dst hold what src holds (len bytes): a reflink, or when allowed a
// copy. Sets *how for the log; ENOTSUP (with err) when only a copy would
// do and copy is false.
int CloneOrCopy(const FileHandler* h, const std::string& what, int src, int dst, uint64_t len,
                bool copy, const char** how, char* err, size_t errlen) {
  *how = "a reflink";
  if (ioctl(dst, FICLONE, src) == 0) {
    // A clone leaves a longer destination's tail in place.
    if (ftruncate(dst, static_cast<off_t>(len)) == 0) return 0;
    int e = Errno();
    SetErr(err, errlen, "%s: set its length: %s", what.c_str(), strerror(e));
    return e;
  }
  int e = Errno();
  if (!CloneUnsupported(e)) {
    SetErr(err, errlen, "%s: reflink: %s", what.c_str(), strerror(e));
    return e;
  }
  if (!copy) {
    SetErr(err, errlen,
           "the file system under %s cannot reflink (%s), so a snapshot of %s would be a full "
           "copy of its %llu bytes; say 'copy' to make one",
           h->base_path.c_str(), strerror(e), what.c_str(), static_cast<unsigned long long>(len));
    return ENOTSUP;
  }
  *how = "a copy";
  CopyProgress progress{h, what, len};
  int rc = ftruncate(dst, 0) < 0 || ftruncate(dst, static_cast<off_t>(len)) < 0
               ? Errno()
               : CopyData(src, dst, 0, len, &progress);
  if (rc) SetErr(err, errlen, "%s: copy: %s", what.c_str(), strerror(rc));
  return rc;
}

int OpenRegular(int dir, const std::string& name, int flags, struct stat* st) {
  UniqueFd fd(OpenBeneath(dir, name.c_str(), flags | O_NONBLOCK));
  if (!fd.valid()) return -1;
  if (fstat(fd.get(), st) < 0) return -1;
  if (!S_ISREG(st->st_mode)) {
    errno = EINVAL;
    return -1;
  }
  return fd.release();
}

// The name a snapshot has while it is made.
std::string PartName(const SnapshotPath& p, const char* name) { return p.base + "@.part-" + name; }

// Makes the copy in part (open as dst) snapshot p.snap: read-only (nothing
// is meant to write a snapshot), on disk, under its name.
int CompleteSnapshot(const FileHandler* h, const SnapshotPath& p, const std::string& part, int dst,
                     char* err, size_t errlen) {
  if (fchmod(dst, h->file_mode & ~0222u) == 0 && fsync(dst) == 0 &&
      renameat2(p.dir.get(), part.c_str(), p.dir.get(), p.snap.c_str(), RENAME_NOREPLACE) == 0 &&
      fsync(p.dir.get()) == 0)
    return 0;
  int e = Errno();
  SetErr(err, errlen, "complete %s: %s", p.snap.c_str(), strerror(e));
  return e;
}

}  // namespace

std::vector<SnapshotFile> SnapshotFiles(int dir, const std::string& base) {
  std::vector<SnapshotFile> out;
  int fd = dup(dir);
  DIR* d = fd < 0 ? nullptr : fdopendir(fd);
  if (!d) {
    if (fd >= 0) close(fd);
    return out;
  }
  const std::string prefix = base + "@";
  while (dirent* de = readdir(d)) {
    std::string_view n = de->d_name;
    if (!n.starts_with(prefix) || !nbdr::IsSnapshotName(n.substr(prefix.size()))) continue;
    struct stat st;
    if (fstatat(dir, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode)) continue;
    out.push_back({std::string(n.substr(prefix.size())), static_cast<uint64_t>(st.st_size),
                   static_cast<int64_t>(st.st_mtime)});
  }
  closedir(d);
  std::sort(out.begin(), out.end(), [](const SnapshotFile& a, const SnapshotFile& b) {
    return a.created != b.created ? a.created < b.created : a.name < b.name;
  });
  return out;
}

int SnapshotCreate(void* state, const char* key, void* /*export_handle*/, const char* name,
                   uint32_t flags, char* err, size_t errlen) {
  auto* h = static_cast<FileHandler*>(state);
  SnapshotPath p;
  if (int rc = OpenSnapshotPath(h, key, name, &p, err, errlen)) return rc;
  // A descriptor of our own: the export's may be open read-only or
  // write-only, and the page cache is the same.
  struct stat st;
  UniqueFd src(OpenRegular(p.dir.get(), p.base, O_RDONLY, &st));
  if (!src.valid()) {
    int e = Errno();
    SetErr(err, errlen, "%s under %s: %s", key, h->base_path.c_str(), strerror(e));
    return e;
  }
  struct stat taken;
  if (fstatat(p.dir.get(), p.snap.c_str(), &taken, AT_SYMLINK_NOFOLLOW) == 0) {
    SetErr(err, errlen, "%s already has a snapshot named %s", key, name);
    return EEXIST;
  }
  // Made under a name no snapshot has (it starts with '.'), renamed once
  // complete: KEY@NAME is never a partial copy, and a crash leaves only
  // the partial file, which the next attempt removes.
  const std::string part = PartName(p, name);
  unlinkat(p.dir.get(), part.c_str(), 0);
  UniqueFd dst(OpenBeneath(p.dir.get(), part.c_str(), O_WRONLY | O_CREAT | O_EXCL, h->file_mode));
  if (!dst.valid()) {
    int e = Errno();
    SetErr(err, errlen, "create %s@%s: %s", key, name, strerror(e));
    return e;
  }
  const char* how = "";
  int rc = CloneOrCopy(h, key, src.get(), dst.get(), static_cast<uint64_t>(st.st_size),
                       flags & NBDR_SNAPSHOT_COPY, &how, err, errlen);
  if (!rc && (flags & NBDR_SNAPSHOT_UNFINISHED)) return 0;  // SnapshotCopyRanges completes it
  if (!rc) rc = CompleteSnapshot(h, p, part, dst.get(), err, errlen);
  if (rc) {
    unlinkat(p.dir.get(), part.c_str(), 0);
    return rc;
  }
  handler_util::Log(h->svc, NBDR_LOG_INFO, key, "snapshot %s: %s of %llu bytes", name, how,
                    static_cast<unsigned long long>(st.st_size));
  return 0;
}

int SnapshotCopyRanges(void* state, const char* key, const char* name, const uint64_t* ranges,
                       size_t nranges, uint32_t flags, char* err, size_t errlen) {
  auto* h = static_cast<FileHandler*>(state);
  SnapshotPath p;
  if (int rc = OpenSnapshotPath(h, key, name, &p, err, errlen)) return rc;
  const std::string part = PartName(p, name);
  if (flags & NBDR_SNAPSHOT_DISCARD) {
    if (unlinkat(p.dir.get(), part.c_str(), 0) == 0 || errno == ENOENT) return 0;
    int e = Errno();
    SetErr(err, errlen, "remove the unfinished snapshot %s: %s", part.c_str(), strerror(e));
    return e;
  }
  struct stat st, made;
  UniqueFd src(OpenRegular(p.dir.get(), p.base, O_RDONLY, &st));
  UniqueFd dst(src.valid() ? OpenRegular(p.dir.get(), part, O_WRONLY, &made) : -1);
  if (!dst.valid()) {
    int e = Errno();
    SetErr(err, errlen, "%s: %s", src.valid() ? part.c_str() : key, strerror(e));
    return e;
  }
  for (size_t i = 0; i < nranges; i++) {
    const uint64_t off = ranges[2 * i], len = ranges[2 * i + 1];
    if (off > static_cast<uint64_t>(made.st_size) ||
        len > static_cast<uint64_t>(made.st_size) - off) {
      SetErr(err, errlen, "%s: range %llu+%llu lies past its end", part.c_str(),
             static_cast<unsigned long long>(off), static_cast<unsigned long long>(len));
      return EINVAL;
    }
    if (int rc = CopyAgain(h, key, src.get(), dst.get(), off, len)) {
      SetErr(err, errlen, "%s: copy again: %s", part.c_str(), strerror(rc));
      return rc;
    }
  }
  return flags & NBDR_SNAPSHOT_FINISH ? CompleteSnapshot(h, p, part, dst.get(), err, errlen) : 0;
}

int SnapshotDelete(void* state, const char* key, const char* name, char* err, size_t errlen) {
  auto* h = static_cast<FileHandler*>(state);
  SnapshotPath p;
  if (int rc = OpenSnapshotPath(h, key, name, &p, err, errlen)) return rc;
  struct stat st;
  if (fstatat(p.dir.get(), p.snap.c_str(), &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode)) {
    SetErr(err, errlen, "%s has no snapshot named %s", key, name);
    return ENOENT;
  }
  if (unlinkat(p.dir.get(), p.snap.c_str(), 0) < 0 || fsync(p.dir.get()) < 0) {
    int e = Errno();
    SetErr(err, errlen, "delete %s@%s: %s", key, name, strerror(e));
    return e;
  }
  return 0;
}

int SnapshotList(void* state, const char* key,
                 void (*each)(void* ctx, const char* name, uint64_t size, int64_t created),
                 void* ctx, char* err, size_t errlen) {
  auto* h = static_cast<FileHandler*>(state);
  SnapshotPath p;
  if (int rc = OpenSnapshotPath(h, key, "", &p, err, errlen)) return rc;
  struct stat st;
  if (fstatat(p.dir.get(), p.base.c_str(), &st, AT_SYMLINK_NOFOLLOW) < 0) {
    int e = Errno();
    SetErr(err, errlen, "%s under %s: %s", key, h->base_path.c_str(), strerror(e));
    return e;
  }
  for (const SnapshotFile& s : SnapshotFiles(p.dir.get(), p.base))
    each(ctx, s.name.c_str(), s.size, s.created);
  return 0;
}

int SnapshotRollback(void* state, const char* key, void* /*export_handle*/, const char* name,
                     uint64_t* size, char* err, size_t errlen) {
  auto* h = static_cast<FileHandler*>(state);
  SnapshotPath p;
  if (int rc = OpenSnapshotPath(h, key, name, &p, err, errlen)) return rc;
  struct stat st, live;
  UniqueFd src(OpenRegular(p.dir.get(), p.snap, O_RDONLY, &st));
  if (!src.valid()) {
    int e = Errno();
    if (e == ENOENT)
      SetErr(err, errlen, "%s has no snapshot named %s", key, name);
    else
      SetErr(err, errlen, "open %s@%s: %s", key, name, strerror(e));
    return e;
  }
  // In place, through a descriptor of our own (the same inode and page
  // cache as an open export's).
  UniqueFd dst(OpenRegular(p.dir.get(), p.base, O_WRONLY, &live));
  if (!dst.valid()) {
    int e = Errno();
    SetErr(err, errlen, "%s under %s: %s", key, h->base_path.c_str(), strerror(e));
    return e;
  }
  const char* how = "";
  // A snapshot that exists was made as the operator allowed: a rollback
  // copies where it cannot reflink.
  int rc = CloneOrCopy(h, key, src.get(), dst.get(), static_cast<uint64_t>(st.st_size), true, &how,
                       err, errlen);
  if (!rc && fsync(dst.get()) < 0) {
    rc = Errno();
    SetErr(err, errlen, "sync %s: %s", key, strerror(rc));
  }
  if (rc) {
    if (std::string(how) == "a copy")
      handler_util::Log(h->svc, NBDR_LOG_ERROR, key,
                        "the rollback to %s stopped partway: the file holds parts of both; "
                        "roll it back again",
                        name);
    return rc;
  }
  *size = static_cast<uint64_t>(st.st_size);
  handler_util::Log(h->svc, NBDR_LOG_INFO, key, "rolled back to snapshot %s (%s)", name, how);
  return 0;
}

}  // namespace file_backstore
