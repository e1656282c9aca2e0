// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// nbd-runner option parsing; see runner_options.h.
#include "runner/runner_options.h"

#include <limits.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <vector>

#include "utils/config_file.h"
#include "utils/names.h"
#include "utils/parse_number.h"
#include "utils/size_parse.h"

namespace nbdr {

uint64_t DefaultBufferMemory() {
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  const uint64_t ram = pages > 0 && page > 0 ? uint64_t(pages) * uint64_t(page) : 0;
  return std::clamp<uint64_t>(ram / 8, uint64_t{64} << 20, uint64_t{4} << 30);
}

namespace {

const std::set<std::string> kFlags = {"foreground", "version", "help", "check-config",
                                      "tls-verify-peer"};
const std::set<std::string> kRunnerKeys = {
    "config",    "rpc-host",          "rpc-port",     "io-host",        "io-port",
    "handler-dir", "state-dir",       "log-dir",      "log-level",      "threads",
    "foreground", "version",          "help",         "handshake-timeout", "idle-timeout",
    "check-config",
    "max-connections", "max-connections-per-peer", "mapping-timeout", "busy-poll-us",
    "send-timeout", "max-buffer-memory",
    "tls", "tls-certificates", "tls-psk", "tls-verify-peer", "control-socket",
    "control-admins", "metrics-host", "metrics-port"};
// The word before an option name's first '-' ("gluster" of
// "gluster-hosts"), the namespace handler options are named in; "" when
// there is none.
std::string OptionPrefix(const std::string& key) {
  size_t dash = key.find('-');
  return dash == std::string::npos || dash == 0 ? "" : key.substr(0, dash);
}

// How many typing mistakes (a letter added, dropped, changed, or two
// neighbours swapped) turn a into b: the optimal string alignment
// distance, for short words.
size_t TypingDistance(const std::string& a, const std::string& b) {
  std::vector<std::vector<size_t>> d(a.size() + 1, std::vector<size_t>(b.size() + 1));
  for (size_t i = 0; i <= a.size(); i++) d[i][0] = i;
  for (size_t j = 0; j <= b.size(); j++) d[0][j] = j;
  for (size_t i = 1; i <= a.size(); i++) {
    for (size_t j = 1; j <= b.size(); j++) {
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1,
                          d[i - 1][j - 1] + (a[i - 1] != b[j - 1])});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.size()][b.size()];
}

// Whether word is one or two typing mistakes away from one of owned (one
// for words of up to four letters, whose neighbours are too many).
bool NearlyOwned(const std::string& word, const std::set<std::string>& owned) {
  const size_t slack = word.size() <= 4 ? 1 : 2;
  for (const auto& o : owned)
    if (TypingDistance(word, o) <= slack) return true;
  return false;
}

Expected<long> ParseInt(const std::string& key, const std::string& value, long min, long max) {
  if (value.empty()) return Status::Error(EINVAL, "--" + key + ": needs a number");
  std::optional<long> v = ParseLongInRange(value, min, max);
  if (!v)
    return Status::Error(EINVAL, "--" + key + ": '" + value + "' is not a number from " +
                                     std::to_string(min) + " to " + std::to_string(max));
  return *v;
}

bool ParseBool(const std::string& v) {
  return v.empty() || v == "1" || v == "yes" || v == "true" || v == "on";
}

// A flag whose silent misreading would weaken security: anything but a
// clear yes or no is an error.
Expected<bool> ParseStrictBool(const std::string& key, const std::string& v) {
  if (v.empty() || v == "1" || v == "yes" || v == "true" || v == "on") return true;
  if (v == "0" || v == "no" || v == "false" || v == "off") return false;
  return Status::Error(EINVAL, "--" + key + ": '" + v + "' is not yes or no");
}

std::string DefaultHandlerDir() {
  char buf[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return NBDR_INSTALL_HANDLER_DIR;
  buf[n] = '\0';
  std::string exe(buf);
  std::string bindir = exe.substr(0, exe.rfind('/'));
  // <prefix>/sbin/nbd-runner -> <prefix>/lib/nbd-runner
  return bindir.substr(0, bindir.rfind('/')) + "/" NBDR_HANDLER_SUBDIR;
}

Status Apply(RunnerOptions* o, const std::string& key, const std::string& value,
             const std::string& origin) {
  o->all[key] = value;
  auto num = [&](long min, long max) { return ParseInt(key, value, min, max); };
  if (key == "rpc-host") o->rpc_host = value;
  else if (key == "io-host") o->io_host = value;
  else if (key == "handler-dir") o->handler_dir = value;
  else if (key == "state-dir") o->state_dir = value;
  else if (key == "log-dir") o->log_dir = value;
  else if (key == "config") o->config_file = value;
  else if (key == "foreground") o->foreground = ParseBool(value);
  else if (key == "version") o->show_version = true;
  else if (key == "help") o->show_help = true;
  else if (key == "check-config") o->check_config = true;
  else if (key == "tls-certificates") o->tls.certificates_dir = value;
  else if (key == "tls-psk") o->tls.psk_file = value;
  else if (key == "control-socket") o->control_socket = value;
  else if (key == "metrics-host") o->metrics_host = value;
  else if (key == "control-admins") {
    auto ids = ParseTlsIdentityList(value);
    if (!ids) return ids.status().WithContext("--control-admins");
    o->control_admins = std::move(*ids);
  }
  else if (key == "tls") {
    auto m = ParseTlsMode(value);
    if (!m) return m.status();
    o->tls.mode = *m;
  } else if (key == "tls-verify-peer") {
    auto b = ParseStrictBool(key, value);
    if (!b) return b.status();
    o->tls.verify_peer = *b;
  }
  else if (key == "log-level") {
    auto l = ParseLogLevel(value);
    if (!l) return l.status().WithContext("--log-level");
    o->log_level = *l;
  } else if (key == "metrics-port") {
    auto v = num(0, 65535);
    if (!v) return v.status();
    o->metrics_port = static_cast<int>(*v);
  } else if (key == "rpc-port" || key == "io-port") {
    auto v = num(0, 65535);
    if (!v) return v.status();
    (key == "rpc-port" ? o->rpc_port : o->io_port) = static_cast<uint16_t>(*v);
  } else if (key == "threads") {
    auto v = num(1, 1024);
    if (!v) return v.status();
    o->threads = static_cast<int>(*v);
  } else if (key == "handshake-timeout") {
    auto v = num(1, 3600);
    if (!v) return v.status();
    o->handshake_timeout = static_cast<int>(*v);
  } else if (key == "idle-timeout") {
    auto v = num(0, 86400 * 365);
    if (!v) return v.status();
    o->idle_timeout = static_cast<int>(*v);
  } else if (key == "busy-poll-us") {
    auto v = num(0, 1000);
    if (!v) return v.status();
    o->busy_poll_us = static_cast<int>(*v);
  } else if (key == "mapping-timeout") {
    auto v = num(1, 3600);
    if (!v) return v.status();
    o->mapping_timeout = static_cast<int>(*v);
  } else if (key == "max-connections") {
    auto v = num(1, 65536);
    if (!v) return v.status();
    o->max_connections = static_cast<int>(*v);
  } else if (key == "send-timeout") {
    auto v = num(1, 86400);
    if (!v) return v.status();
    o->send_timeout = static_cast<int>(*v);
  } else if (key == "max-buffer-memory") {
    auto v = ParseSize(value);
    if (!v || *v < (16u << 20))
      return Status::Error(EINVAL, origin + ": max-buffer-memory: '" + value +
                                       "' is not a size of at least 16M (e.g. 256M, 2G)");
    o->max_buffer_memory = *v;
  } else if (key == "max-connections-per-peer") {
    auto v = num(1, 65536);
    if (!v) return v.status();
    o->max_connections_per_peer = static_cast<int>(*v);
  } else {
    o->unknown[key] = origin;
  }
  return Status();
}

Status CheckTlsOptions(const RunnerOptions& o) {
  const TlsOptions& t = o.tls;
  if (t.mode == TlsMode::kOff && !o.control_admins.empty())
    return Status::Error(EINVAL, "--control-admins given, but TLS is off: without TLS no caller "
                                 "proves an identity (and every caller of the control port is "
                                 "admin); add --tls on or --tls require");
  if (t.mode == TlsMode::kOff) {
    // Credentials with no word on TLS: the operator believes it is on.
    if (!o.all.count("tls") && (!t.certificates_dir.empty() || !t.psk_file.empty()))
      return Status::Error(EINVAL, std::string(t.psk_file.empty() ? "--tls-certificates"
                                                                   : "--tls-psk") +
                                       " given, but TLS is off: add --tls on (offered) or "
                                       "--tls require");
    return Status();
  }
  if (t.certificates_dir.empty() && t.psk_file.empty())
    return Status::Error(EINVAL, std::string("--tls ") + TlsModeName(t.mode) +
                                     ": needs --tls-certificates DIR or --tls-psk FILE (or both)");
  if (t.verify_peer && t.certificates_dir.empty())
    return Status::Error(EINVAL, "--tls-verify-peer: needs --tls-certificates DIR (its "
                                 "ca-cert.pem signs the clients' certificates)");
  return Status();
}

// A port whose address was not given listens on loopback only, unless
// TLS guards it (both ports with TLS on or required listen everywhere).
void ApplySecureDefaults(RunnerOptions* o) {
  const std::string host = o->tls.mode == TlsMode::kOff ? kLoopback : "";
  if (!o->all.count("rpc-host")) o->rpc_host = host;
  if (!o->all.count("io-host")) o->io_host = host;
}

}  // namespace

std::string RunnerUsage(const std::string& handler_dir, const std::string& handler_help) {
  return
      "Usage: nbd-runner [OPTIONS]\n"
      "Serves backstores (files, GlusterFS, Ceph RBD) as NBD exports.\n"
      "\n"
      "  --config FILE            read options from FILE (key = value)\n"
      "  --rpc-host ADDR          control RPC address (default: all with --tls on or\n"
      "                           require, else 127.0.0.1)\n"
      "  --rpc-port N             control RPC port (default 24110; 0 = any free port)\n"
      "  --io-host ADDR           NBD address (default: all with --tls on or require,\n"
      "                           else 127.0.0.1)\n"
      "  --io-port N              NBD port (default 24111; 0 = any free port)\n"
      "  --control-socket PATH    the admin unix socket: the control RPC for root only\n"
      "                           (default /run/nbd-runner/control.sock; \"\" = none)\n"
      "  --handler-dir DIR        where lib<name>_handler.so live\n"
      "                           (default <prefix>/lib/nbd-runner)\n"
      "  --state-dir DIR          holds saveconfig.json (default /etc/nbd-runner)\n"
      "  --log-dir DIR            holds nbd-runner.log (default /var/log/nbd-runner)\n"
      "  --log-level LEVEL        error, warning, info or debug (default info)\n"
      "  --threads N              I/O worker threads per handler (default 8)\n"
      "  --handshake-timeout S    seconds a client has to finish the NBD handshake (10)\n"
      "  --idle-timeout S         close NBD connections idle this long (0 = never;\n"
      "                           never a kernel mapping's)\n"
      "  --busy-poll-us N         a reader whose client answered within N microseconds\n"
      "                           last time polls that long before sleeping (30; 0 = off)\n"
      "  --max-connections N      NBD connections served at once (256)\n"
      "  --max-connections-per-peer N  of them from one address (64)\n"
      "  --send-timeout S         drop a client that takes no reply, or sends no write's\n"
      "                           data, within S seconds (60)\n"
      "  --max-buffer-memory SIZE request data in flight in all connections together\n"
      "                           (default: 1/8 of RAM, 64M to 4G)\n"
      "  --mapping-timeout S      a map not confirmed by its client this long is undone (60)\n"
      "  --tls MODE               TLS on the NBD port: off (default), on (offered) or\n"
      "                           require (every client must use it)\n"
      "  --tls-certificates DIR   X.509: ca-cert.pem, server-cert.pem, server-key.pem\n"
      "                           (mode 0600), optional ca-crl.pem\n"
      "  --tls-psk FILE           pre-shared keys, IDENTITY:HEXKEY per line as psktool\n"
      "                           writes them (mode 0600)\n"
      "  --tls-verify-peer        X.509 clients must present a certificate signed by the CA\n"
      "  --control-admins IDS     TLS identities (psk:ID, x509:DN) that may administer over\n"
      "                           the control port; other identities are clients\n"
      "  --metrics-port N         serve Prometheus metrics on http://HOST:N/metrics\n"
      "                           (default: off; 0 = any free port, logged)\n"
      "  --metrics-host ADDR      the metrics address (default 127.0.0.1)\n"
      "  --foreground             stay in the foreground and log to stderr too\n"
      "  --check-config           check the configuration (options, handlers and their\n"
      "                           options, saveconfig.json) and exit: 0 when a start\n"
      "                           would get past it\n"
      "  --version                print the version and exit\n"
      "  --help                   print this help and exit\n"
      "\n"
      "Handler options (also accepted in the config file), from the handlers in\n"
      "  " + handler_dir + ":\n" + handler_help + "\n"
      "Signals: SIGTERM/SIGINT drain and stop; SIGHUP reopens the log and re-reads\n"
      "the log level, mapping timeout and TLS credentials (other changes need a\n"
      "restart).\n";
}

Expected<RunnerOptions> ParseRunnerOptions(int argc, char** argv) {
  struct Item {
    std::string key, value;
  };
  std::vector<Item> cli;
  for (int i = 1; i < argc; i++) {
    std::string arg = argv[i];
    if (arg.rfind("--", 0) != 0 || arg.size() == 2)
      return Status::Error(EINVAL, "unexpected argument '" + arg + "' (see --help)");
    std::string key = arg.substr(2), value;
    size_t eq = key.find('=');
    if (eq != std::string::npos) {
      value = key.substr(eq + 1);
      key = key.substr(0, eq);
    } else if (!kFlags.count(key)) {
      if (i + 1 >= argc) return Status::Error(EINVAL, "--" + key + ": needs a value");
      value = argv[++i];
    }
    cli.push_back({key, value});
  }
  RunnerOptions o;
  o.handler_dir = DefaultHandlerDir();
  for (const auto& it : cli)
    if (it.key == "config") o.config_file = it.value;
  if (!o.config_file.empty()) {
    auto entries = ReadConfigFile(o.config_file);
    if (!entries) return entries.status();
    for (const auto& e : *entries) {
      if (e.key == "config") return Status::Error(EINVAL, e.origin + ": 'config' cannot nest");
      if (Status s = Apply(&o, e.key, e.value, e.origin); !s.ok())
        return s.WithContext(e.origin);
    }
  }
  for (const auto& it : cli) {
    if (Status s = Apply(&o, it.key, it.value, "command line"); !s.ok()) return s;
  }
  if (Status s = CheckTlsOptions(o); !s.ok()) return s;
  if (o.all.count("metrics-host") && o.metrics_port < 0)
    return Status::Error(EINVAL, "metrics-host given without metrics-port: the metrics endpoint "
                                 "is off until metrics-port is set");
  ApplySecureDefaults(&o);
  return o;
}

Status CheckHandlerOptions(const RunnerOptions& opts, const std::set<std::string>& declared,
                           const std::set<std::string>& loaded_types) {
  // Namespaces someone here owns: the loaded handlers' types and the
  // prefixes of their options, and the runner's own words. An unknown
  // option in one of them, or in one a typing mistake away from them, is
  // a mistake; one in a namespace nobody here owns is taken for a handler
  // that is not installed on this node (a configuration shared by several
  // nodes), warned about and ignored.
  std::set<std::string> owned(loaded_types.begin(), loaded_types.end());
  for (const auto& d : declared) owned.insert(OptionPrefix(d));
  for (const auto& k : kRunnerKeys) owned.insert(OptionPrefix(k).empty() ? k : OptionPrefix(k));
  for (const auto& [key, origin] : opts.unknown) {
    if (declared.count(key)) continue;
    const std::string prefix = OptionPrefix(key);
    if (!prefix.empty() && !owned.count(prefix) && !NearlyOwned(prefix, owned)) {
      LOG_WARN("config", "%s: option '%s' ignored: its handler is not loaded", origin.c_str(),
               key.c_str());
      continue;
    }
    return Status::Error(EINVAL, origin + ": unknown option '" + key + "' (see --help)");
  }
  return Status();
}

std::string Absolute(const std::string& path) {
  char buf[PATH_MAX];
  if (realpath(path.c_str(), buf)) return buf;
  return path;
}

}  // namespace nbdr
