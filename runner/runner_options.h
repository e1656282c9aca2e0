// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// RunnerOptions: nbd-runner's configuration, from the command line and an
// optional config file (--config FILE, "key = value", keys are the long
// option names). The command line wins over the file. Handler options
// (file-dir, gluster-hosts, ceph-conf, ...) are collected too and checked
// once the handlers are loaded (CheckHandlerOptions).
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "runner/tls_credentials.h"
#include "utils/log.h"
#include "utils/status.h"

namespace nbdr {

// Where a port listens when its host is not given (see --help).
inline constexpr char kLoopback[] = "127.0.0.1";

// The default max-buffer-memory: an eighth of the machine's RAM, at least
// 64 MiB and at most 4 GiB.
uint64_t DefaultBufferMemory();

struct RunnerOptions {
  std::string config_file;
  std::string rpc_host = kLoopback;
  uint16_t rpc_port = 24110;
  std::string io_host = kLoopback;
  uint16_t io_port = 24111;
  std::string handler_dir;  // default: <prefix>/lib/nbd-runner
  std::string state_dir = "/etc/nbd-runner";
  std::string log_dir = "/var/log/nbd-runner";
  LogLevel log_level = LogLevel::kInfo;
  int threads = 8;
  bool foreground = false;
  bool show_version = false;
  bool show_help = false;
  bool check_config = false;  // --check-config: check, report, exit
  int handshake_timeout = 10;
  int idle_timeout = 0;
  int busy_poll_us = 30;
  int max_connections = 256;
  int max_connections_per_peer = 64;
  int send_timeout = 60;
  // Request data in flight in all connections (see DefaultBufferMemory).
  uint64_t max_buffer_memory = DefaultBufferMemory();
  int mapping_timeout = 60;
  // control-admins: TLS identities that may administer over the control port.
  std::vector<std::string> control_admins;
  // The admin unix socket ("" = none).
  std::string control_socket = "/run/nbd-runner/control.sock";
  // The Prometheus endpoint (metrics_server.h): off while metrics_port < 0.
  std::string metrics_host = kLoopback;
  int metrics_port = -1;
  TlsOptions tls;  // tls, tls-certificates, tls-psk, tls-verify-peer

  // Every key = value seen (runner and handler options), for handlers.
  std::map<std::string, std::string> all;
  // Keys the runner itself does not know: handler options, or typos.
  std::map<std::string, std::string> unknown;  // key -> origin
};

// Parses argv. Fails with a message naming the bad option and why.
Expected<RunnerOptions> ParseRunnerOptions(int argc, char** argv);

// Checks that every unknown option is declared by a loaded handler.
// Options of handler types that are not loaded ("gluster-*" without the
// gluster handler) only warn; anything else is an error.
// loaded_types: the types of the loaded handlers.
Status CheckHandlerOptions(const RunnerOptions& opts, const std::set<std::string>& declared,
                           const std::set<std::string>& loaded_types);

// path made absolute (the daemon keeps its working directory, but logs
// and comparisons want one spelling); path itself when it does not exist.
std::string Absolute(const std::string& path);

// The --help text.
std::string RunnerUsage(const std::string& handler_dir, const std::string& handler_help);

}  // namespace nbdr
