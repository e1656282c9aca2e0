// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// Logger: the daemon's and the CLI's log sink.
//
// One line per event: "2026-11-22T16:10:20.123Z LEVEL [context] message".
// Lines go to an optional log file and, when enabled, to stderr; nothing is
// buffered beyond one line, so memory never grows with log volume. A
// process has one default Logger (Logger::Default()); handlers never touch
// it directly but log through the services table the runner hands them.
// Thread-safe.
#pragma once

#include <atomic>
#include <cstdarg>
#include <cstdio>
#include <string>
#include <string_view>

#include "utils/mutex.h"
#include "utils/status.h"

namespace nbdr {

enum class LogLevel { kError = 0, kWarning = 1, kInfo = 2, kDebug = 3 };

// Parses "error", "warning", "info", "debug" (case-insensitive).
Expected<LogLevel> ParseLogLevel(std::string_view text);
const char* LogLevelName(LogLevel level);

class Logger {
 public:
  Logger() = default;
  ~Logger();
  Logger(const Logger&) = delete;
  Logger& operator=(const Logger&) = delete;

  // The process-wide logger used by the LOG_* macros.
  static Logger& Default();

  void SetLevel(LogLevel level);
  LogLevel level() const { return level_; }
  void SetStderr(bool enabled);
  // Opens (appends to) path; later calls to Reopen() open it again, for
  // log rotation on SIGHUP.
  Status OpenFile(const std::string& path) EXCLUDES(mu_);
  Status Reopen() EXCLUDES(mu_);

  bool Enabled(LogLevel level) const { return level <= level_; }
  void Log(LogLevel level, std::string_view context, const char* fmt, ...)
      __attribute__((format(printf, 4, 5)));
  void LogV(LogLevel level, std::string_view context, const char* fmt, va_list ap)
      EXCLUDES(mu_);

 private:
  Mutex mu_;
  std::atomic<LogLevel> level_{LogLevel::kInfo};
  std::atomic<bool> to_stderr_{true};
  std::string path_ GUARDED_BY(mu_);
  FILE* file_ GUARDED_BY(mu_) = nullptr;
};

}  // namespace nbdr

#define NBDR_LOG(level, ctx, ...)                                       \
  do {                                                                  \
    ::nbdr::Logger& lg_ = ::nbdr::Logger::Default();                    \
    if (lg_.Enabled(level)) lg_.Log(level, ctx, __VA_ARGS__);           \
  } while (0)
#define LOG_ERROR(ctx, ...) NBDR_LOG(::nbdr::LogLevel::kError, ctx, __VA_ARGS__)
#define LOG_WARN(ctx, ...) NBDR_LOG(::nbdr::LogLevel::kWarning, ctx, __VA_ARGS__)
#define LOG_INFO(ctx, ...) NBDR_LOG(::nbdr::LogLevel::kInfo, ctx, __VA_ARGS__)
#define LOG_DEBUG(ctx, ...) NBDR_LOG(::nbdr::LogLevel::kDebug, ctx, __VA_ARGS__)
