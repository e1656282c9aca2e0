// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// The shared export and socketpairs of the NBD server fuzz targets; see
// fuzz_export.h.
#include "fuzz_export.h"

#include <poll.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>

#include "utils/log.h"

namespace nbdr::fuzz {

namespace {

[[noreturn]] void Die(const std::string& what) {
  fprintf(stderr, "fuzz set-up: %s\n", what.c_str());
  abort();
}

std::string g_dir;

void RemoveDir() { std::filesystem::remove_all(g_dir); }

FuzzExport* Build() {
  Logger::Default().SetStderr(false);
  Logger::Default().SetLevel(LogLevel::kDebug);
  char tmpl[] = "/tmp/nbdr-fuzz-XXXXXX";
  if (!mkdtemp(tmpl)) Die("mkdtemp");
  g_dir = tmpl;
  atexit(RemoveDir);
  std::filesystem::create_directory(g_dir + "/handlers");
  std::filesystem::create_directory(g_dir + "/data");
  std::filesystem::create_symlink(std::string(NBDR_FUZZ_HANDLER_DIR) + "/libfile_handler.so",
                                  g_dir + "/handlers/libfile_handler.so");
  auto* f = new FuzzExport;
  f->handlers = std::make_unique<HandlerSet>(
      std::map<std::string, std::string>{{"file-dir", g_dir + "/data"}});
  if (Status s = f->handlers->LoadDirectory(g_dir + "/handlers"); !s.ok()) Die(s.message());
  f->registry = std::make_unique<BackstoreRegistry>(f->handlers.get(), g_dir + "/saveconfig.json");
  if (Status s = f->registry->Load(); !s.ok()) Die(s.message());
  for (const char* key : {"a.img", "ro.img"}) {
    CreateParams p;
    p.type = "file";
    p.key = key;
    p.size = 1 << 20;
    p.readonly = std::string(key) == "ro.img";
    if (Status s = f->registry->Create(p); !s.ok()) Die(s.message());
  }
  NbdServerOptions opts;
  opts.handshake_timeout_s = 2;
  opts.send_timeout_s = 2;
  opts.idle_timeout_s = 2;
  opts.busy_poll_us = 0;
  f->server = std::make_unique<NbdServer>(opts, f->registry.get());
  return f;
}

}  // namespace

FuzzExport& SharedExport() {
  static FuzzExport* f = Build();
  return *f;
}

std::pair<UniqueFd, UniqueFd> RawPair() {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) Die("socketpair");
  return {UniqueFd(sv[0]), UniqueFd(sv[1])};
}

Pair MakePair() {
  auto [client, runner] = RawPair();
  Pair p;
  p.client = std::move(client);
  p.runner = std::make_unique<TcpTransport>(std::move(runner), 60);
  return p;
}

ClientFeeder::ClientFeeder(UniqueFd fd, const uint8_t* data, size_t size) : fd_(std::move(fd)) {
  thread_ = std::thread([this, data, size] {
    const int fd = fd_.get();
    size_t sent = 0;
    char sink[65536];
    if (size == 0) shutdown(fd, SHUT_WR);
    while (true) {
      pollfd p{fd, static_cast<short>(POLLIN | (sent < size ? POLLOUT : 0)), 0};
      if (poll(&p, 1, -1) < 0) return;
      if (p.revents & POLLIN) {
        ssize_t n = read(fd, sink, sizeof sink);
        if (n <= 0) return;  // the runner's end closed
      }
      if (sent < size && (p.revents & POLLOUT)) {
        ssize_t n = send(fd, data + sent, size - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) sent += static_cast<size_t>(n);
        if (sent == size || n < 0) {
          sent = size;
          shutdown(fd, SHUT_WR);
        }
      } else if (p.revents & (POLLHUP | POLLERR) && !(p.revents & POLLIN)) {
        return;
      }
    }
  });
}

ClientFeeder::~ClientFeeder() { thread_.join(); }

}  // namespace nbdr::fuzz
