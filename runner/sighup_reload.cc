// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// SIGHUP's re-read of the configuration; see sighup_reload.h.
#include "runner/sighup_reload.h"

#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <set>
#include <string>
#include <vector>

#include "runner/tls_credentials.h"
#include "utils/log.h"
#include "utils/unique_fd.h"

extern char** environ;

namespace nbdr {

namespace {

// SIGHUP, for TLS: the credentials are read again from the (possibly new)
// paths, a renewed certificate, a new CRL, keys added to or removed from
// the PSK file; the handshakes from now on use them. Whether TLS is off,
// on or required changes only with a restart (Reload names it).
void ReloadTls(const RunnerOptions& fresh, RunnerOptions* running, NbdServer* nbd) {
  if (running->tls.mode == TlsMode::kOff) return;
  TlsOptions next = fresh.tls;
  next.mode = running->tls.mode;
  auto creds = TlsCredentials::Load(next, nbd->tls() ? nbd->tls()->minted() : nullptr);
  if (!creds) {
    LOG_ERROR("config", "SIGHUP: TLS credentials not reloaded, the running ones stay: %s",
              creds.status().message().c_str());
    return;
  }
  nbd->SetTls(*creds);
  running->tls = next;
  LOG_INFO("config", "SIGHUP: TLS credentials reloaded: %s", (*creds)->Describe().c_str());
}

}  // namespace

// Runs this program again with argv and --check-config, so the handlers
// judge their options in a process of their own; OK when the check
// passed, else the check's last line (its reason).
Status CheckConfigInChild(int argc, char** argv) {
  int out[2];
  if (pipe2(out, O_CLOEXEC) < 0) return PosixError("configuration check: pipe");
  UniqueFd read_end(out[0]), write_end(out[1]);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, write_end.get(), 1);
  posix_spawn_file_actions_adddup2(&actions, write_end.get(), 2);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attr, &none);  // this thread blocks the signals it waits for
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
  std::vector<char*> args(argv, argv + argc);
  std::string flag = "--check-config";
  args.push_back(flag.data());
  args.push_back(nullptr);
  pid_t pid = -1;
  int rc = posix_spawn(&pid, "/proc/self/exe", &actions, &attr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  write_end.reset();
  if (rc != 0) return Status::Error(rc, std::string("configuration check: ") + strerror(rc));
  std::string output;
  constexpr int kCheckTimeoutMs = 60000;
  bool timed_out = false;
  for (;;) {
    pollfd p{read_end.get(), POLLIN, 0};
    int n = poll(&p, 1, kCheckTimeoutMs);
    if (n == 0) {
      timed_out = true;
      kill(pid, SIGKILL);
      break;
    }
    if (n < 0 && errno == EINTR) continue;
    char buf[4096];
    ssize_t got = n > 0 ? read(read_end.get(), buf, sizeof buf) : -1;
    if (got <= 0) break;
    if (output.size() < (1u << 20)) output.append(buf, static_cast<size_t>(got));
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (timed_out) return Status::Error(ETIMEDOUT, "the configuration check took over 60 s");
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return Status();
  while (!output.empty() && output.back() == '\n') output.pop_back();
  // The check's last line is its verdict: "configuration refused: WHY".
  size_t nl = output.rfind('\n');
  std::string last = output.substr(nl == std::string::npos ? 0 : nl + 1);
  const std::string prefix = "configuration refused: ";
  if (last.rfind(prefix, 0) == 0) last = last.substr(prefix.size());
  return Status::Error(EINVAL, last.empty() ? "the configuration check failed" : last);
}

// SIGHUP: reopens the log file and re-reads the configuration (command line
// and --config file), checked first as a start would check it
// (--check-config in a child). The log level, the mapping timeout and the
// TLS credentials change live; every other changed option is named as
// needing a restart.
void Reload(int argc, char** argv, RunnerOptions* running, BackstoreRegistry* registry,
            NbdServer* nbd) {
  Logger& log = Logger::Default();
  Status reopened = log.Reopen();
  LOG_INFO("", "SIGHUP: log file reopened%s%s", reopened.ok() ? "" : ": ",
           reopened.message().c_str());
  auto fresh = ParseRunnerOptions(argc, argv);
  if (!fresh) {
    LOG_ERROR("config", "SIGHUP: configuration not reloaded, the running one stays: %s",
              fresh.status().message().c_str());
    return;
  }
  if (Status s = CheckConfigInChild(argc, argv); !s.ok()) {
    LOG_ERROR("config", "SIGHUP: configuration not reloaded, the running one stays: %s",
              s.message().c_str());
    return;
  }
  if (fresh->log_level != log.level()) {
    log.SetLevel(fresh->log_level);
    std::string name = LogLevelName(fresh->log_level);
    for (char& c : name) c = static_cast<char>(tolower(static_cast<unsigned char>(c)));
    LOG_INFO("config", "SIGHUP: log level now %s", name.c_str());
  }
  if (fresh->mapping_timeout != running->mapping_timeout) {
    registry->SetMappingTimeout(fresh->mapping_timeout);
    running->mapping_timeout = fresh->mapping_timeout;
    LOG_INFO("config", "SIGHUP: mapping timeout now %d s", fresh->mapping_timeout);
  }
  ReloadTls(*fresh, running, nbd);
  std::vector<std::string> restart;
  auto differs = [&](const char* name, bool changed) {
    if (changed) restart.push_back(name);
  };
  differs("tls", fresh->tls.mode != running->tls.mode);
  differs("rpc-host", fresh->rpc_host != running->rpc_host);
  differs("rpc-port", fresh->rpc_port != running->rpc_port);
  differs("io-host", fresh->io_host != running->io_host);
  differs("io-port", fresh->io_port != running->io_port);
  differs("handler-dir", Absolute(fresh->handler_dir) != running->handler_dir);
  differs("state-dir", Absolute(fresh->state_dir) != running->state_dir);
  differs("log-dir", Absolute(fresh->log_dir) != running->log_dir);
  differs("threads", fresh->threads != running->threads);
  differs("handshake-timeout", fresh->handshake_timeout != running->handshake_timeout);
  differs("idle-timeout", fresh->idle_timeout != running->idle_timeout);
  differs("busy-poll-us", fresh->busy_poll_us != running->busy_poll_us);
  differs("max-connections", fresh->max_connections != running->max_connections);
  // Handler options (file-dir, gluster-hosts, ceph-conf, ...).
  std::set<std::string> keys;
  for (const auto& [k, v] : running->all) keys.insert(k);
  for (const auto& [k, v] : fresh->all) keys.insert(k);
  for (const auto& k : keys) {
    if (running->unknown.count(k) == 0 && fresh->unknown.count(k) == 0) continue;
    auto a = running->all.find(k);
    auto b = fresh->all.find(k);
    if (a == running->all.end() || b == fresh->all.end() || a->second != b->second)
      restart.push_back(k);
  }
  if (restart.empty()) return;
  std::string names;
  for (const auto& n : restart) names += (names.empty() ? "" : ", ") + n;
  LOG_WARN("config", "SIGHUP: changed options take effect after a restart: %s", names.c_str());
}

}  // namespace nbdr
