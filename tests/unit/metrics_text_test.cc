// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// Unit tests of the metrics text (runner/metrics_text.h) and the counts
// behind it (runner/export_stats.h): label values are escaped, a
// request lands in the one bucket its latency fits and the histogram is
// rendered cumulative, refused requests count but are not timed, errnos
// outside the counted set count as "other", and a snapshot's key keeps
// its '@'.
#include "runner/metrics_text.h"

#include <gtest/gtest.h>

#include <cerrno>

namespace nbdr {
namespace {

bool Has(const std::string& text, const std::string& line) {
  return text.find("\n" + line + "\n") != std::string::npos;
}

TEST(MetricsText, EscapesLabelValues) {
  EXPECT_EQ(EscapeLabelValue("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
  EXPECT_EQ(EscapeLabelValue("disks/a.img@s1"), "disks/a.img@s1");
}

TEST(MetricsText, HistogramsAreCumulativeAndRefusalsUntimed) {
  auto stats = std::make_shared<ExportStats>();
  stats->Done(StatOp::kRead, 4096, 0, 50'000);         // 50 us: the first bucket
  stats->Done(StatOp::kRead, 4096, 0, 2'000'000);      // 2 ms: le 0.0025
  stats->Done(StatOp::kRead, 4096, 0, 9'000'000'000);  // 9 s: only +Inf
  stats->Done(StatOp::kRead, 512, EINVAL, -1);         // refused
  stats->Done(StatOp::kWrite, 8192, EBADF, 1'000);     // an errno not counted by name
  MetricsSnapshot m;
  m.exports = {{"file/disks/a.img@s1", stats}};
  m.backstores = {{"file", 1}};
  m.version = "9.9";
  const std::string text = RenderMetrics(m);
  const std::string read = R"(type="file",key="disks/a.img@s1",op="read")";
  EXPECT_TRUE(Has(text, "nbd_runner_requests_total{" + read + "} 4")) << text;
  EXPECT_TRUE(Has(text, "nbd_runner_request_bytes_total{" + read + "} 12800"));
  EXPECT_TRUE(
      Has(text, "nbd_runner_request_duration_seconds_bucket{" + read + R"(,le="0.0001"} 1)"));
  EXPECT_TRUE(
      Has(text, "nbd_runner_request_duration_seconds_bucket{" + read + R"(,le="0.001"} 1)"));
  EXPECT_TRUE(
      Has(text, "nbd_runner_request_duration_seconds_bucket{" + read + R"(,le="0.0025"} 2)"));
  EXPECT_TRUE(Has(text, "nbd_runner_request_duration_seconds_bucket{" + read + R"(,le="5"} 2)"));
  EXPECT_TRUE(Has(text, "nbd_runner_request_duration_seconds_bucket{" + read + R"(,le="+Inf"} 3)"));
  EXPECT_TRUE(Has(text, "nbd_runner_request_duration_seconds_count{" + read + "} 3"));
  EXPECT_TRUE(
      Has(text,
          R"(nbd_runner_request_errors_total{type="file",key="disks/a.img@s1",errno="EINVAL"} 1)"));
  EXPECT_TRUE(
      Has(text,
          R"(nbd_runner_request_errors_total{type="file",key="disks/a.img@s1",errno="other"} 1)"));
  // No flush happened: no flush histogram, but its request count is there.
  EXPECT_EQ(text.find(R"(op="flush",le=)"), std::string::npos);
  EXPECT_TRUE(
      Has(text, R"(nbd_runner_requests_total{type="file",key="disks/a.img@s1",op="flush"} 0)"));
  EXPECT_TRUE(Has(text, R"(nbd_runner_build_info{version="9.9"} 1)"));
}

TEST(MetricsText, ProcessSampleReadsThisProcess) {
  ProcessSample p = ProcessSample::Read();
  EXPECT_GT(p.resident_bytes, 0u);
  EXPECT_GT(p.threads, 0u);
  EXPECT_GT(p.open_fds, 0u);
  EXPECT_GT(p.start_time_seconds, 1.7e9);
}

}  // namespace
}  // namespace nbdr
