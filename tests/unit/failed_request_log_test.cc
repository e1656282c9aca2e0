// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// Unit tests of handler_util::FailedRequestLog, the bundled handlers' guard
// against a log line per failed request while a backend is down.
#include <gtest/gtest.h>

#include <cstdarg>
#include <string>
#include <vector>

#include "handlers/common/handler_util.h"

namespace {

std::vector<std::string> g_lines;

void CaptureLog(void*, int, const char* context, const char* fmt, ...) {
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  g_lines.push_back(std::string(context) + ": " + buf);
}

nbdr_services Services() {
  nbdr_services svc{};
  svc.struct_size = sizeof svc;
  svc.log = CaptureLog;
  return svc;
}

TEST(FailedRequestLog, LogsABurstThenSumsUpTheRestAtFlush) {
  g_lines.clear();
  nbdr_services svc = Services();
  handler_util::FailedRequestLog log;
  for (int i = 0; i < 100; i++) log.Note(&svc, "rbd/p/img", 1, 4096u * i, i < 99 ? EIO : ETIMEDOUT);
  ASSERT_EQ(g_lines.size(), size_t{handler_util::FailedRequestLog::kBurst});
  EXPECT_EQ(g_lines[0], "rbd/p/img: request type 1 at 0: Input/output error");
  log.Flush(&svc, "rbd/p/img");
  ASSERT_EQ(g_lines.size(), size_t{handler_util::FailedRequestLog::kBurst} + 1);
  EXPECT_EQ(g_lines.back(), "rbd/p/img: 95 more requests failed (the last: Connection timed "
                            "out), not logged one by one");
}

TEST(FailedRequestLog, FlushWithNothingSuppressedLogsNothing) {
  g_lines.clear();
  nbdr_services svc = Services();
  handler_util::FailedRequestLog log;
  log.Note(&svc, "gluster/v/f", 0, 0, EIO);
  log.Flush(&svc, "gluster/v/f");
  log.Flush(&svc, "gluster/v/f");
  EXPECT_EQ(g_lines.size(), 1u);
}

}  // namespace
