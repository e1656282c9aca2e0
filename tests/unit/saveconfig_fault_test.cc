// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// Unit tests of how StoreSaveconfig (runner/saveconfig.h) meets failing
// storage. This file replaces fsync(2) for the whole unit_tests binary:
// while g_fail_fsync names a kind of file (a regular file or a directory),
// fsync on such a file fails with EIO; otherwise the real system call runs.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <sstream>

#include "runner/saveconfig.h"

namespace {

// 0: no fault; S_IFREG or S_IFDIR: fsync of that kind of file fails.
mode_t g_fail_fsync = 0;

}  // namespace

extern "C" int fsync(int fd) {
  struct stat st;
  if (g_fail_fsync != 0 && fstat(fd, &st) == 0 && (st.st_mode & S_IFMT) == g_fail_fsync) {
    errno = EIO;
    return -1;
  }
  return static_cast<int>(syscall(SYS_fsync, fd));
}

namespace nbdr {
namespace {

BackstoreRecord Record(const std::string& key) {
  BackstoreRecord r;
  r.type = "file";
  r.key = key;
  r.size = 1 << 20;
  return r;
}

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class SaveconfigFault : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_NE(mkdtemp(dir_), nullptr);
    path_ = std::string(dir_) + "/saveconfig.json";
    ASSERT_TRUE(StoreSaveconfig(path_, {Record("old.img")}).ok());
    before_ = Slurp(path_);
  }
  void TearDown() override {
    g_fail_fsync = 0;
    unlink(path_.c_str());
    rmdir((path_ + ".tmp").c_str());
    rmdir(dir_);
  }
  char dir_[32] = "/tmp/nbdr-savefault-XXXXXX";
  std::string path_;
  std::string before_;
};

TEST_F(SaveconfigFault, FailedFileSyncKeepsTheOldFileAndSaysWhy) {
  g_fail_fsync = S_IFREG;
  Status s = StoreSaveconfig(path_, {Record("old.img"), Record("new.img")});
  g_fail_fsync = 0;
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), EIO);
  EXPECT_NE(s.message().find("fsync " + path_ + ".tmp"), std::string::npos) << s.message();
  EXPECT_EQ(Slurp(path_), before_);
  EXPECT_NE(access((path_ + ".tmp").c_str(), F_OK), 0);  // the temp file is gone
}

TEST_F(SaveconfigFault, FailedDirectorySyncStillStoresTheNewFile) {
  // The rename already happened: the file says what the callers now hold,
  // so the store succeeds (and logs that a power loss may undo it).
  g_fail_fsync = S_IFDIR;
  Status s = StoreSaveconfig(path_, {Record("old.img"), Record("new.img")});
  g_fail_fsync = 0;
  ASSERT_TRUE(s.ok()) << s.message();
  auto loaded = LoadSaveconfig(path_);
  ASSERT_TRUE(loaded.ok()) << loaded.status().message();
  ASSERT_EQ(loaded->size(), 2u);
  EXPECT_EQ((*loaded)[1].key, "new.img");
}

TEST_F(SaveconfigFault, UnwritableTempFileKeepsTheOldFile) {
  ASSERT_EQ(mkdir((path_ + ".tmp").c_str(), 0700), 0);  // open(O_WRONLY) fails: EISDIR
  Status s = StoreSaveconfig(path_, {Record("new.img")});
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), EISDIR);
  EXPECT_NE(s.message().find(path_ + ".tmp"), std::string::npos) << s.message();
  EXPECT_EQ(Slurp(path_), before_);
}

}  // namespace
}  // namespace nbdr
