// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// The runner's metrics in Prometheus' text exposition format (version
// 0.0.4), as the metrics endpoint serves them (metrics_server.h). Every
// series of an export carries type="TYPE" and key="KEY" (a snapshot's key
// is KEY@NAME): one series set per export, as docs/metrics.md lists.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "runner/export_stats.h"

namespace nbdr {

// What /proc says of this process (zeroes where it cannot be read).
struct ProcessSample {
  double cpu_seconds = 0;
  uint64_t resident_bytes = 0;
  uint64_t virtual_bytes = 0;
  double start_time_seconds = 0;  // since the epoch
  uint64_t open_fds = 0;
  uint64_t max_fds = 0;
  uint64_t threads = 0;
  static ProcessSample Read();
};

struct MetricsSnapshot {
  std::vector<std::pair<std::string, std::shared_ptr<ExportStats>>> exports;  // by export name
  std::map<std::string, size_t> backstores;  // registered, by handler type
  ProcessSample process;
  std::string version;
};

std::string RenderMetrics(const MetricsSnapshot& m);

// A label value escaped as the format asks (\\, \", \n).
std::string EscapeLabelValue(const std::string& v);

}  // namespace nbdr
