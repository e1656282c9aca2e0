// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// Replacing a file atomically and durably; see atomic_file.h.
#include "utils/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "utils/unique_fd.h"

namespace nbdr {

namespace {

// Writes all of text to fd, retrying short writes and EINTR.
Status WriteAll(int fd, std::string_view text, const std::string& name) {
  const char* p = text.data();
  size_t left = text.size();
  while (left > 0) {
    ssize_t n = write(fd, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      return PosixError("write " + name);
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
  return Status();
}

std::string DirectoryOf(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

}  // namespace

Status WriteFileAtomically(const std::string& path, std::string_view text, mode_t mode,
                           std::string* dir_sync_error) {
  const std::string tmp = path + ".tmp";
  UniqueFd fd(open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode));
  if (!fd.valid()) return PosixError("write " + tmp);
  Status s = WriteAll(fd.get(), text, tmp);
  if (s.ok() && fsync(fd.get()) < 0) s = PosixError("fsync " + tmp);
  fd.reset();
  if (s.ok() && rename(tmp.c_str(), path.c_str()) < 0)
    s = PosixError("rename " + tmp + " to " + path);
  if (!s.ok()) {
    unlink(tmp.c_str());
    return s;
  }
  UniqueFd dfd(open(DirectoryOf(path).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if ((!dfd.valid() || fsync(dfd.get()) < 0) && dir_sync_error)
    *dir_sync_error = strerror(errno);
  return Status();
}

}  // namespace nbdr
