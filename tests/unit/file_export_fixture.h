// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// A test fixture with a real registry serving one real file backstore
// (file/a.img, 1 MiB, through libfile_handler.so from the build tree) and
// an NbdServer that is not listening: tests run the handshake and the
// transmission engine on one end of a socketpair and play the client on
// the other. Each test gets its own directory, removed afterwards.
#pragma once

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <string>

#include "runner/backstore_registry.h"
#include "runner/handler_set.h"
#include "runner/nbd_server.h"
#include "runner/transport.h"
#include "utils/unique_fd.h"

namespace nbdr {

class FileExportFixture : public ::testing::Test {
 protected:
  static constexpr uint64_t kExportSize = 1 << 20;

  void SetUp() override {
    char tmpl[] = "/tmp/nbdr-unit-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    std::filesystem::create_directory(dir_ + "/handlers");
    std::filesystem::create_directory(dir_ + "/data");
    std::filesystem::create_symlink(std::string(NBDR_TEST_HANDLER_DIR) + "/libfile_handler.so",
                                    dir_ + "/handlers/libfile_handler.so");
    handlers_ = std::make_unique<HandlerSet>(
        std::map<std::string, std::string>{{"file-dir", dir_ + "/data"}});
    Status s = handlers_->LoadDirectory(dir_ + "/handlers");
    ASSERT_TRUE(s.ok()) << s.message();
    registry_ = std::make_unique<BackstoreRegistry>(handlers_.get(), dir_ + "/saveconfig.json");
    s = registry_->Load();
    ASSERT_TRUE(s.ok()) << s.message();
    CreateParams p;
    p.type = "file";
    p.key = "a.img";
    p.size = kExportSize;
    s = registry_->Create(p);
    ASSERT_TRUE(s.ok()) << s.message();
  }

  void TearDown() override {
    server_.reset();
    registry_.reset();
    if (handlers_) handlers_->UnloadAll();
    std::filesystem::remove_all(dir_);
  }

  // The server (not listening) with these options; call before Connect.
  void StartServer(NbdServerOptions opts = {}) {
    server_ = std::make_unique<NbdServer>(opts, registry_.get());
  }

  // A socketpair: the runner's end as a Transport, the client's as a fd.
  void Connect() {
    int sv[2];
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    client_.reset(sv[0]);
    transport_ = std::make_unique<TcpTransport>(UniqueFd(sv[1]), 60);
  }

  std::string dir_;
  std::unique_ptr<HandlerSet> handlers_;
  std::unique_ptr<BackstoreRegistry> registry_;
  std::unique_ptr<NbdServer> server_;
  std::unique_ptr<Transport> transport_;
  UniqueFd client_;
};

}  // namespace nbdr
