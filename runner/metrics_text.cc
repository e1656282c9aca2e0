// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// Rendering of the metrics endpoint's text; see metrics_text.h.
#include "runner/metrics_text.h"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <vector>

namespace nbdr {

namespace {

// The text of one metric family, written series by series.
class Family {
 public:
  Family(std::string* out, const char* name, const char* type, const char* help)
      : out_(out), name_(name) {
    *out_ += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
  }
  void Series(const std::string& suffix, const std::string& labels, double value) {
    char num[64];
    snprintf(num, sizeof num, "%.9g", value);
    *out_ += name_ + suffix + (labels.empty() ? "" : "{" + labels + "}") + " " + num + "\n";
  }
  void Series(const std::string& labels, uint64_t value) { Series("", labels, value); }
  void Series(const std::string& suffix, const std::string& labels, uint64_t value) {
    *out_ += name_ + suffix + (labels.empty() ? "" : "{" + labels + "}") + " " +
             std::to_string(value) + "\n";
  }

 private:
  std::string* out_;
  std::string name_;
};

// type="...",key="..." of an export name "TYPE/KEY".
std::string ExportLabels(const std::string& export_name) {
  const size_t slash = export_name.find('/');
  const std::string type = export_name.substr(0, slash);
  const std::string key = slash == std::string::npos ? "" : export_name.substr(slash + 1);
  return "type=\"" + EscapeLabelValue(type) + "\",key=\"" + EscapeLabelValue(key) + "\"";
}

std::string OpLabels(const std::string& labels, int op) {
  return labels + ",op=\"" + StatOpName(static_cast<StatOp>(op)) + "\"";
}

uint64_t Load(const std::atomic<uint64_t>& v) { return v.load(std::memory_order_relaxed); }

void RenderRequests(const MetricsSnapshot& m, std::string* out) {
  Family requests(out, "nbd_runner_requests_total", "counter",
                  "NBD requests answered, by export and request type.");
  for (const auto& [name, s] : m.exports)
    for (int op = 0; op < kStatOps; op++)
      requests.Series(OpLabels(ExportLabels(name), op), Load(s->ops[op].requests));
  Family bytes(out, "nbd_runner_request_bytes_total", "counter",
               "Bytes the NBD requests named: data read or written, the range trimmed, "
               "zeroed, cached or described.");
  for (const auto& [name, s] : m.exports)
    for (int op = 0; op < kStatOps; op++)
      bytes.Series(OpLabels(ExportLabels(name), op), Load(s->ops[op].bytes));
  Family errors(out, "nbd_runner_request_errors_total", "counter",
                "NBD requests answered with an error, by errno (only those that occurred).");
  for (const auto& [name, s] : m.exports)
    for (size_t slot = 0; slot < s->errnos.size(); slot++)
      if (uint64_t n = Load(s->errnos[slot]))
        errors.Series(ExportLabels(name) + ",errno=\"" + ErrnoSlotName(slot) + "\"", n);
}

void RenderLatency(const MetricsSnapshot& m, std::string* out) {
  Family h(out, "nbd_runner_request_duration_seconds", "histogram",
           "Time from an NBD request's arrival to its completion by the handler, by request "
           "type (only the types that occurred).");
  for (const auto& [name, s] : m.exports) {
    for (int op = 0; op < kStatOps; op++) {
      const ExportStats::Op& o = s->ops[op];
      uint64_t count = Load(o.timed);
      if (count == 0) continue;
      const std::string labels = OpLabels(ExportLabels(name), op);
      uint64_t cumulative = 0;
      for (size_t b = 0; b < kLatencyBounds.size(); b++) {
        cumulative += Load(o.buckets[b]);
        char le[32];
        snprintf(le, sizeof le, "%g", kLatencyBounds[b]);
        h.Series("_bucket", labels + ",le=\"" + le + "\"", cumulative);
      }
      // A request that completed meanwhile may be in a bucket already and
      // not yet in the count read above: +Inf is never below a bucket.
      count = std::max(count, cumulative);
      h.Series("_bucket", labels + ",le=\"+Inf\"", count);
      h.Series("_sum", labels, static_cast<double>(Load(o.nanos)) / 1e9);
      h.Series("_count", labels, count);
    }
  }
}

void RenderConnections(const MetricsSnapshot& m, std::string* out) {
  Family in_flight(out, "nbd_runner_requests_in_flight", "gauge",
                   "NBD requests received and not yet answered.");
  for (const auto& [name, s] : m.exports)
    in_flight.Series(ExportLabels(name), static_cast<uint64_t>(std::max<int64_t>(
                                             0, s->in_flight.load(std::memory_order_relaxed))));
  Family conns(out, "nbd_runner_connections", "gauge", "NBD connections serving the export now.");
  for (const auto& [name, s] : m.exports)
    conns.Series(ExportLabels(name), static_cast<uint64_t>(std::max<int64_t>(
                                         0, s->connections.load(std::memory_order_relaxed))));
  Family opened(out, "nbd_runner_connections_opened_total", "counter",
                "NBD connections that began serving the export.");
  for (const auto& [name, s] : m.exports)
    opened.Series(ExportLabels(name), Load(s->connections_total));
}

void RenderRunner(const MetricsSnapshot& m, std::string* out) {
  Family backstores(out, "nbd_runner_backstores", "gauge",
                    "Backstores registered on this runner, by handler type.");
  for (const auto& [type, n] : m.backstores)
    backstores.Series("type=\"" + EscapeLabelValue(type) + "\"", n);
  Family info(out, "nbd_runner_build_info", "gauge", "The runner's version (always 1).");
  info.Series("version=\"" + EscapeLabelValue(m.version) + "\"", 1);
  Family threads(out, "nbd_runner_threads", "gauge", "Threads of the runner process.");
  threads.Series("", m.process.threads);
  const ProcessSample& p = m.process;
  Family(out, "process_cpu_seconds_total", "counter", "User and system CPU time spent.")
      .Series("", "", p.cpu_seconds);
  Family(out, "process_resident_memory_bytes", "gauge", "Resident memory size.")
      .Series("", p.resident_bytes);
  Family(out, "process_virtual_memory_bytes", "gauge", "Virtual memory size.")
      .Series("", p.virtual_bytes);
  Family(out, "process_start_time_seconds", "gauge", "Start time since the epoch.")
      .Series("", "", p.start_time_seconds);
  Family(out, "process_open_fds", "gauge", "Open file descriptors.").Series("", p.open_fds);
  Family(out, "process_max_fds", "gauge", "The limit of open file descriptors.")
      .Series("", p.max_fds);
}

}  // namespace

std::string EscapeLabelValue(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '"')
      out += "\\\"";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

ProcessSample ProcessSample::Read() {
  ProcessSample p;
  const double tick = static_cast<double>(sysconf(_SC_CLK_TCK));
  const double page = static_cast<double>(sysconf(_SC_PAGESIZE));
  std::ifstream stat("/proc/self/stat");
  std::string line;
  std::getline(stat, line);
  // Fields after the command name, which ends at the last ')': state is
  // field 3; utime 14, stime 15, num_threads 20, starttime 22, vsize 23,
  // rss 24.
  if (size_t close = line.rfind(')'); close != std::string::npos) {
    std::istringstream in(line.substr(close + 2));
    std::vector<std::string> f{"", "", ""};
    for (std::string w; in >> w;) f.push_back(w);
    auto field = [&](size_t n) { return n < f.size() ? std::stod(f[n]) : 0.0; };
    if (f.size() > 24) {
      p.cpu_seconds = (field(14) + field(15)) / tick;
      p.threads = static_cast<uint64_t>(field(20));
      p.virtual_bytes = static_cast<uint64_t>(field(23));
      p.resident_bytes = static_cast<uint64_t>(field(24) * page);
      std::ifstream sys("/proc/stat");
      for (std::string key; sys >> key;) {
        if (key == "btime") {
          double btime = 0;
          sys >> btime;
          p.start_time_seconds = btime + field(22) / tick;
          break;
        }
        std::getline(sys, line);
      }
    }
  }
  if (DIR* d = opendir("/proc/self/fd")) {
    while (const dirent* e = readdir(d))
      if (e->d_name[0] != '.') p.open_fds++;
    closedir(d);
    if (p.open_fds) p.open_fds--;  // the directory's own descriptor
  }
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) == 0) p.max_fds = lim.rlim_cur;
  return p;
}

std::string RenderMetrics(const MetricsSnapshot& m) {
  std::string out;
  RenderRequests(m, &out);
  RenderLatency(m, &out);
  RenderConnections(m, &out);
  RenderRunner(m, &out);
  return out;
}

}  // namespace nbdr
