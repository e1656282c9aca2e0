// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// nbd-runner: the daemon. Parses options, takes the state directory lock,
// loads handlers and saveconfig.json, binds the control and data ports,
// then serves until SIGTERM/SIGINT (SIGHUP reopens the log file). Without
// --foreground it detaches first and returns once it serves.
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <spawn.h>
#include <stdlib.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "runner/backstore_registry.h"
#include "runner/control_service.h"
#include "runner/handler_set.h"
#include "runner/minted_keys.h"
#include "runner/nbd_server.h"
#include "runner/rpc_server.h"
#include "runner/runner_options.h"
#include "runner/saveconfig.h"

#include "utils/log.h"
#include "utils/unique_fd.h"

using namespace nbdr;

namespace {

// Control connections served at once: beyond, an idle one is closed to make
// room, or the new one is refused.
constexpr int kMaxRpcConnections = 64;

Status MakeDirs(const std::string& path) {
  std::string cur;
  size_t pos = 0;
  while (pos != std::string::npos) {
    pos = path.find('/', pos + 1);
    cur = path.substr(0, pos);
    if (cur.empty()) continue;
    if (mkdir(cur.c_str(), 0755) < 0 && errno != EEXIST) return PosixError("mkdir " + cur);
  }
  return Status();
}

// Takes an exclusive lock on <state-dir>/nbd-runner.lock and writes our
// pid into it. The returned descriptor holds the lock.
Expected<UniqueFd> LockStateDir(const std::string& state_dir) {
  std::string path = state_dir + "/nbd-runner.lock";
  UniqueFd fd(open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
  if (!fd.valid()) return PosixError("open " + path);
  if (flock(fd.get(), LOCK_EX | LOCK_NB) < 0) {
    if (errno != EWOULDBLOCK) return PosixError("lock " + path);
    char pid[32] = "";
    ssize_t n = pread(fd.get(), pid, sizeof pid - 1, 0);
    if (n > 0) pid[strcspn(pid, "\n")] = '\0';
    return Status::Error(EBUSY, "another nbd-runner" +
                                    (n > 0 ? " (pid " + std::string(pid) + ")" : "") +
                                    " is already using state directory " + state_dir);
  }
  std::string pid = std::to_string(getpid()) + "\n";
  if (ftruncate(fd.get(), 0) < 0 || pwrite(fd.get(), pid.data(), pid.size(), 0) < 0)
    return PosixError("write " + path);
  return fd;
}

// Makes path absolute (the daemon changes to / when it detaches).
std::string Absolute(const std::string& path) {
  char buf[PATH_MAX];
  if (realpath(path.c_str(), buf)) return buf;
  return path;
}

// Tells systemd (Type=notify) about the daemon's state; a no-op when not
// started by systemd.
void Notify(const std::string& state) { sd_notify(0, state.c_str()); }

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

int Fail(const Status& s) {
  LOG_ERROR("", "%s", s.message().c_str());
  return 1;
}

// Loads the handler directory into handlers and checks the handler
// options against what the loaded handlers declare: 0 when both pass, else
// the exit status a start gives (1; 2 for options no handler takes), with
// the reason in *why.
int LoadHandlers(const RunnerOptions& opts, HandlerSet* handlers, Status* why) {
  if (Status s = handlers->LoadDirectory(opts.handler_dir); !s.ok()) {
    *why = s;
    return 1;
  }
  std::set<std::string> types;
  for (const auto& t : handlers->Types()) types.insert(t);
  if (Status s = CheckHandlerOptions(opts, handlers->DeclaredOptions(), types); !s.ok()) {
    *why = s;
    return 2;  // a usage error, as for the runner's own options
  }
  return 0;
}

// --check-config: what a start checks before it takes the state directory
// and binds its ports (options, every handler loaded with its options and
// unloaded again, saveconfig.json), with no lock, log file or listener, so
// it runs beside a serving runner. Its last line is the verdict; it exits
// as that start would: 0, 1 or 2.
int CheckConfig(RunnerOptions& opts) {
  Logger::Default().SetLevel(std::min(opts.log_level, LogLevel::kWarning));  // warnings and errors
  opts.handler_dir = Absolute(opts.handler_dir);
  std::string saveconfig = Absolute(opts.state_dir) + "/saveconfig.json";
  auto verdict = [](int rc, const std::string& what) {
    fflush(stderr);
    printf("configuration %s: %s\n", rc == 0 ? "OK" : "refused", what.c_str());
    fflush(stdout);
    return rc;
  };
  std::string loaded;
  {
    HandlerSet handlers(opts.all);
    Status why;
    if (int rc = LoadHandlers(opts, &handlers, &why)) return verdict(rc, why.message());
    std::vector<std::string> types = handlers.Types();
    std::sort(types.begin(), types.end());
    for (const auto& t : types) loaded += (loaded.empty() ? "" : ", ") + t;
  }
  if (auto tls = TlsCredentials::Load(opts.tls); !tls) return verdict(1, tls.status().message());
  MintedKeys minted(Absolute(opts.state_dir) + "/minted-keys.json");
  if (Status s = minted.Load(); !s.ok()) return verdict(1, s.message());
  auto records = LoadSaveconfig(saveconfig);
  if (!records) return verdict(1, records.status().message());
  return verdict(0, "handlers " + (loaded.empty() ? std::string("none") : loaded) + "; " +
                        std::to_string(records->size()) + " backstore(s) in " + saveconfig);
}

// Without --foreground the runner detaches: it forks before anything else
// starts (a child keeps only the thread that forked, so a fork after the
// handlers started their I/O threads left them without any), and the
// parent waits on a pipe until the child serves or fails. The parent's exit
// status is the start's: 0 once both ports are bound, the child's status
// (its error printed to the terminal) otherwise. The working directory is
// kept, so relative paths in options and --config mean the same at SIGHUP.
class Detacher {
 public:
  // In the parent, exits with the child's start status and never returns.
  static Expected<Detacher> Fork() {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) < 0) return PosixError("pipe");
    // Above stdio, which Serving() points at /dev/null (a runner started
    // with fds 0-2 closed would get the pipe there).
    UniqueFd read_end(fcntl(fds[0], F_DUPFD_CLOEXEC, 3));
    UniqueFd write_end(fcntl(fds[1], F_DUPFD_CLOEXEC, 3));
    close(fds[0]);
    close(fds[1]);
    if (!read_end.valid() || !write_end.valid()) return PosixError("pipe");
    fflush(nullptr);
    pid_t child = fork();
    if (child < 0) return PosixError("fork");
    if (child == 0) {
      setsid();
      return Detacher(std::move(write_end));
    }
    write_end.reset();
    // Ctrl-C or a SIGTERM while waiting stops the start, not only this
    // parent: the child, in its own session, is told to stop too.
    static volatile sig_atomic_t stop_signal = 0;
    struct sigaction sa{};
    sa.sa_handler = [](int sig) { stop_signal = sig; };
    for (int sig : {SIGINT, SIGTERM, SIGHUP}) sigaction(sig, &sa, nullptr);  // no SA_RESTART
    char ready = 0;
    ssize_t n;
    for (;;) {
      n = read(read_end.get(), &ready, 1);
      if (n >= 0 || errno != EINTR) break;
      if (stop_signal) kill(child, SIGTERM);
    }
    if (n == 1) _exit(0);
    int status = 0;
    while (waitpid(child, &status, 0) < 0 && errno == EINTR) {
    }
    _exit(WIFEXITED(status) && WEXITSTATUS(status) != 0 ? WEXITSTATUS(status) : 1);
  }

  // In the child, once it serves: releases the parent and the terminal.
  void Serving() {
    Logger::Default().SetStderr(false);
    int null = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null >= 0) {
      for (int fd : {STDIN_FILENO, STDOUT_FILENO, STDERR_FILENO}) dup2(null, fd);
      close(null);
    }
    char ready = 1;
    if (write(parent_.get(), &ready, 1) != 1) {
      // The parent is gone (killed while it waited); nothing waits on us.
    }
    parent_.reset();
  }

 private:
  explicit Detacher(UniqueFd parent) : parent_(std::move(parent)) {}
  UniqueFd parent_;
};

// --help: the runner's options, then those the handlers in the handler
// directory declare (read from their descriptors; none is loaded to serve,
// so none starts or touches storage).
std::string HelpText(const RunnerOptions& opts) {
  Logger::Default().SetLevel(LogLevel::kError);  // a broken plugin is still named
  HandlerSet handlers({});
  Status s = handlers.LoadDirectory(opts.handler_dir, HandlerSet::Mode::kDescribe);
  std::string help = handlers.OptionsHelp();
  if (!s.ok()) help = "    (" + s.message() + ")\n";
  else if (help.empty()) help = "    (no handler there)\n";
  return RunnerUsage(opts.handler_dir, help);
}

// The NBD server's settings from the runner's options.
NbdServerOptions NbdOptionsFrom(const RunnerOptions& opts,
                                std::shared_ptr<const TlsCredentials> tls) {
  NbdServerOptions n;
  n.host = opts.io_host;
  n.port = opts.io_port;
  n.handshake_timeout_s = opts.handshake_timeout;
  n.idle_timeout_s = opts.idle_timeout;
  n.busy_poll_us = opts.busy_poll_us;
  n.max_connections = opts.max_connections;
  n.tls = tls;
  return n;
}

// Signals are handled by the main thread only (WaitForStop); they are
// blocked before any thread starts so every thread inherits the mask.
sigset_t BlockSignals() {
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGTERM);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);
  signal(SIGPIPE, SIG_IGN);
  return sigs;
}

// Serves until SIGTERM or SIGINT; SIGHUP runs reload.
template <typename Fn>
void WaitForStop(const sigset_t& sigs, Fn reload) {
  for (;;) {
    int sig = 0;
    if (sigwait(&sigs, &sig) != 0) continue;
    if (sig == SIGHUP) {
      Notify("RELOADING=1");
      reload();
      Notify("READY=1");
      continue;
    }
    LOG_INFO("", "%s: shutting down", strsignal(sig));
    Notify("STOPPING=1");
    return;
  }
}

}  // namespace

int main(int argc, char** argv) {
  auto parsed = ParseRunnerOptions(argc, argv);
  if (!parsed) {
    fprintf(stderr, "nbd-runner: %s\n", parsed.status().message().c_str());
    return 2;
  }
  RunnerOptions& opts = *parsed;
  if (opts.show_help) {
    fputs(HelpText(opts).c_str(), stdout);
    return 0;
  }
  if (opts.show_version) {
    printf("nbd-runner %s (handler ABI %d)\n", NBDR_PACKAGE_VERSION, NBDR_HANDLER_ABI_VERSION);
    return 0;
  }

  Logger& log = Logger::Default();
  log.SetLevel(opts.log_level);
  log.SetStderr(true);  // until we have detached
  if (opts.check_config) return CheckConfig(opts);
  std::optional<Detacher> detacher;
  if (!opts.foreground) {
    auto d = Detacher::Fork();
    if (!d) return Fail(d.status());
    detacher.emplace(std::move(*d));
  }
  if (Status s = MakeDirs(opts.log_dir); !s.ok()) return Fail(s);
  if (Status s = MakeDirs(opts.state_dir); !s.ok()) return Fail(s);
  opts.state_dir = Absolute(opts.state_dir);
  opts.log_dir = Absolute(opts.log_dir);
  opts.handler_dir = Absolute(opts.handler_dir);
  if (Status s = log.OpenFile(opts.log_dir + "/nbd-runner.log"); !s.ok()) return Fail(s);
  // Offered to every handler (handler.h): their own logs go beside ours.
  opts.all[NBDR_OPTION_LOG_DIR] = opts.log_dir;
  opts.all[NBDR_OPTION_THREADS] = std::to_string(opts.threads);
  auto lock = LockStateDir(opts.state_dir);
  if (!lock) return Fail(lock.status());

  const sigset_t sigs = BlockSignals();

  LOG_INFO("", "nbd-runner %s starting (state %s, handlers %s)", NBDR_PACKAGE_VERSION,
           opts.state_dir.c_str(), opts.handler_dir.c_str());
  HandlerSet handlers(opts.all);
  if (Status why; int rc = LoadHandlers(opts, &handlers, &why)) {
    Fail(why);
    return rc;
  }
  if (handlers.Types().empty()) LOG_WARN("", "no handler loaded from %s", opts.handler_dir.c_str());
  // Keys minted for backstores with auth: loaded even with TLS off, so a
  // damaged file is reported, but used only with TLS on.
  MintedKeys minted(opts.state_dir + "/minted-keys.json");
  if (Status s = minted.Load(); !s.ok()) return Fail(s);
  const MintedKeys* tls_minted = opts.tls.mode == TlsMode::kOff ? nullptr : &minted;
  auto tls = TlsCredentials::Load(opts.tls, tls_minted);
  if (!tls) return Fail(tls.status());
  if (opts.tls.mode != TlsMode::kOff)
    LOG_INFO("", "TLS %s on the NBD port: %s", opts.tls.mode == TlsMode::kOn ? "offered" : "required",
             (*tls)->Describe().c_str());

  BackstoreRegistry registry(&handlers, opts.state_dir + "/saveconfig.json");
  registry.SetMappingTimeout(opts.mapping_timeout);
  if (tls_minted) registry.SetMintedKeys(&minted);
  if (Status s = registry.Load(); !s.ok())
    return Fail(s.WithContext("refusing to start; saveconfig.json left untouched"));

  NbdServer nbd(NbdOptionsFrom(opts, *tls), &registry);
  ControlService control(&registry, &handlers, NBDR_PACKAGE_VERSION);
  RpcServer rpc(opts.rpc_host, opts.rpc_port, &control, kMaxRpcConnections);

  if (Status s = nbd.Start(); !s.ok()) return Fail(s);
  control.SetIoAddress({opts.io_host, nbd.port()});
  if (Status s = rpc.Start(); !s.ok()) return Fail(s);
  LOG_INFO("", "NBD listening on %s (port %u)", nbd.address().c_str(), nbd.port());
  LOG_INFO("", "control RPC listening on %s (port %u)", rpc.address().c_str(), rpc.port());
  Notify("READY=1\nSTATUS=serving NBD on " + nbd.address() + ", control RPC on " + rpc.address());
  if (detacher) detacher->Serving();

  WaitForStop(sigs, [&] { Reload(argc, argv, &opts, &registry, &nbd); });
  rpc.Stop();
  nbd.Stop();
  LOG_INFO("", "stopped cleanly");
  return 0;
}
