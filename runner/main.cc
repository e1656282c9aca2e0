// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// nbd-runner: the daemon. Parses options, takes the state directory lock,
// loads handlers and saveconfig.json, binds the control and data ports,
// then serves until SIGTERM/SIGINT (SIGHUP: sighup_reload.h). Without
// --foreground it detaches first and returns once it serves.
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
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
#include "runner/metrics_server.h"
#include "runner/metrics_text.h"
#include "runner/nbd_server.h"
#include "runner/rpc_server.h"
#include "runner/runner_options.h"
#include "runner/runner_id.h"
#include "runner/saveconfig.h"
#include "runner/sighup_reload.h"

#include "utils/log.h"
#include "utils/net.h"
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
    // 0750: the state (keys, saveconfig) and the logs are not for every user.
    if (mkdir(cur.c_str(), 0750) < 0 && errno != EEXIST) return PosixError("mkdir " + cur);
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

// Tells systemd (Type=notify) about the daemon's state; a no-op when not
// started by systemd.
void Notify(const std::string& state) { sd_notify(0, state.c_str()); }

// What the metrics endpoint shows now (metrics_text.h).
MetricsSnapshot TakeMetrics(const BackstoreRegistry& registry, const HandlerSet& handlers) {
  MetricsSnapshot m;
  m.exports = registry.AllStats();
  for (const std::string& type : handlers.Types()) m.backstores[type] = 0;
  for (const auto& [type, n] : registry.CountByType()) m.backstores[type] = n;
  m.process = ProcessSample::Read();
  m.version = NBDR_PACKAGE_VERSION;
  return m;
}

// The NBD port's TLS credentials, which consult the keys minted for
// backstores with auth. Those are loaded even with TLS off, so a damaged
// key file is reported, but used only with TLS on.
Expected<std::shared_ptr<const TlsCredentials>> LoadTls(const RunnerOptions& opts,
                                                        MintedKeys* minted) {
  if (Status s = minted->Load(); !s.ok()) return s;
  auto tls = TlsCredentials::Load(opts.tls, opts.tls.mode == TlsMode::kOff ? nullptr : minted);
  if (tls && opts.tls.mode != TlsMode::kOff)
    LOG_INFO("", "TLS %s on the NBD port: %s", opts.tls.mode == TlsMode::kOn ? "offered" : "required",
             (*tls)->Describe().c_str());
  return tls;
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

// The admin unix socket. One configured explicitly must work; the default
// one may be taken by another runner on this host (or /run be read-only
// for an unprivileged test run): then this runner goes on without it,
// and says so.
Status StartAdminSocket(const RunnerOptions& opts, RpcServer* rpc) {
  if (opts.control_socket.empty()) return Status();
  const std::string dir = opts.control_socket.substr(0, opts.control_socket.rfind('/'));
  if (!dir.empty() && mkdir(dir.c_str(), 0755) < 0 && errno != EEXIST) {
    Status s = PosixError("mkdir " + dir);
    if (opts.all.count("control-socket")) return s.WithContext("admin socket");
    LOG_WARN("", "no admin socket: %s", s.message().c_str());
    return Status();
  }
  Status s = rpc->StartLocal(opts.control_socket);
  if (s.ok()) {
    LOG_INFO("", "admin socket listening on %s (root only)", opts.control_socket.c_str());
  } else if (!opts.all.count("control-socket")) {
    LOG_WARN("", "no admin socket: %s (set control-socket to give this runner its own)",
             s.message().c_str());
    return Status();
  }
  return s;
}

// At every start: a port that others can reach without the protection it
// needs is named in a warning, with the risk and the fix.
void WarnAboutExposedPorts(const RunnerOptions& opts, const std::string& nbd_address,
                           const std::string& rpc_address) {
  if (!IsLoopbackHost(opts.io_host) && opts.tls.mode == TlsMode::kOff)
    LOG_WARN("", "the NBD port listens on %s without TLS: anyone who reaches it can read and "
             "overwrite every backstore; set tls = require with tls-psk or tls-certificates, or "
             "io-host = 127.0.0.1", nbd_address.c_str());
  if (!IsLoopbackHost(opts.rpc_host) && opts.tls.mode == TlsMode::kOff)
    LOG_WARN("", "the control port listens on %s without TLS: anyone who reaches it can create, "
             "import and delete backstores and their data; set tls = require and "
             "control-admins, or rpc-host = 127.0.0.1", rpc_address.c_str());
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
  n.max_connections_per_peer = opts.max_connections_per_peer;
  n.send_timeout_s = opts.send_timeout;
  n.max_buffer_memory = opts.max_buffer_memory;
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

// What STATUS= tells systemd (systemctl status shows it).
std::string ServingStatus(const BackstoreRegistry& registry) {
  int64_t connections = 0;
  for (const auto& [name, stats] : registry.AllStats())
    connections += stats->connections.load(std::memory_order_relaxed);
  size_t backstores = 0;
  for (const auto& [type, n] : registry.CountByType()) backstores += n;
  return "STATUS=serving " + std::to_string(backstores) + " backstores, " +
         std::to_string(registry.OpenCount()) + " open, " + std::to_string(connections) +
         " NBD connections";
}

// How often the main loop tells systemd how it is: half the unit's
// WatchdogSec when it has one, else every 10 s (STATUS= only).
std::chrono::milliseconds TickInterval(bool* watchdog) {
  uint64_t usec = 0;
  *watchdog = sd_watchdog_enabled(0, &usec) > 0 && usec > 0;
  return *watchdog ? std::chrono::milliseconds(std::max<uint64_t>(usec / 2000, 100))
                   : std::chrono::milliseconds(10000);
}

// Serves until SIGTERM or SIGINT; SIGHUP runs reload; between signals,
// tick runs every interval.
template <typename Fn, typename Tick>
void WaitForStop(const sigset_t& sigs, std::chrono::milliseconds interval, Fn reload, Tick tick) {
  for (;;) {
    timespec wait{static_cast<time_t>(interval.count() / 1000),
                  static_cast<long>(interval.count() % 1000) * 1000000};
    int sig = sigtimedwait(&sigs, nullptr, &wait);
    if (sig < 0) {
      if (errno == EAGAIN) tick();
      continue;
    }
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
  MintedKeys minted(opts.state_dir + "/minted-keys.json");
  auto tls = LoadTls(opts, &minted);
  if (!tls) return Fail(tls.status());

  BackstoreRegistry registry(&handlers, opts.state_dir + "/saveconfig.json");
  registry.SetMappingTimeout(opts.mapping_timeout);
  if (opts.tls.mode != TlsMode::kOff) registry.SetMintedKeys(&minted);
  if (Status s = registry.Load(); !s.ok())
    return Fail(s.WithContext("refusing to start; saveconfig.json left untouched"));

  NbdServer nbd(NbdOptionsFrom(opts, *tls), &registry);
  auto runner_id = LoadOrMakeRunnerId(opts.state_dir);
  if (!runner_id) return Fail(runner_id.status().WithContext("refusing to start"));
  ControlService control(&registry, &handlers, NBDR_PACKAGE_VERSION);
  control.SetRunnerId(*runner_id);
  control.SetPolicy({opts.tls.mode, {opts.control_admins.begin(), opts.control_admins.end()}});
  RpcServer rpc(opts.rpc_host, opts.rpc_port, &control, kMaxRpcConnections,
                [&nbd] { return nbd.tls(); });

  if (Status s = nbd.Start(); !s.ok()) return Fail(s);
  control.SetIoAddress({opts.io_host, nbd.port()});
  if (Status s = rpc.Start(); !s.ok()) return Fail(s);
  if (Status s = StartAdminSocket(opts, &rpc); !s.ok()) return Fail(s);
  MetricsServer metrics([&] { return RenderMetrics(TakeMetrics(registry, handlers)); });
  if (opts.metrics_port >= 0)
    if (Status s = metrics.Start(opts.metrics_host, static_cast<uint16_t>(opts.metrics_port));
        !s.ok())
      return Fail(s);
  LOG_INFO("", "NBD listening on %s (port %u)", nbd.address().c_str(), nbd.port());
  LOG_INFO("", "control RPC listening on %s (port %u)", rpc.address().c_str(), rpc.port());
  WarnAboutExposedPorts(opts, nbd.address(), rpc.address());
  Notify("READY=1\nSTATUS=serving NBD on " + nbd.address() + ", control RPC on " + rpc.address());
  if (detacher) detacher->Serving();

  bool watchdog = false;
  const auto interval = TickInterval(&watchdog);
  if (watchdog) LOG_INFO("", "systemd watchdog: alive every %lld ms", (long long)interval.count());
  WaitForStop(
      sigs, interval, [&] { Reload(argc, argv, &opts, &registry, &nbd); },
      [&] {
        // Alive only while the NBD event loop beats: a loop stuck longer
        // than the watchdog lets systemd restart the runner.
        const auto& loop = nbd.stall_watch();
        std::string state = ServingStatus(registry);
        if (watchdog && !loop.StalledSince(loop.stalls())) state = "WATCHDOG=1\n" + state;
        Notify(state);
      });
  metrics.Stop();
  rpc.Stop();
  nbd.Stop();
  LOG_INFO("", "stopped cleanly");
  return 0;
}
