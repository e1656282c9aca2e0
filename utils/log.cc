// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// Logger implementation; see log.h.
#include "utils/log.h"

#include <fcntl.h>
#include <unistd.h>

#include <strings.h>
#include <sys/time.h>

#include <cerrno>
#include <cstring>
#include <ctime>

#include "utils/printable.h"

namespace nbdr {

Expected<LogLevel> ParseLogLevel(std::string_view text) {
  static const struct {
    const char* name;
    LogLevel level;
  } kLevels[] = {{"error", LogLevel::kError},
                 {"warning", LogLevel::kWarning},
                 {"warn", LogLevel::kWarning},
                 {"info", LogLevel::kInfo},
                 {"debug", LogLevel::kDebug}};
  for (const auto& l : kLevels) {
    if (text.size() == strlen(l.name) && strncasecmp(text.data(), l.name, text.size()) == 0)
      return l.level;
  }
  return Status::Error(EINVAL, "log level: '" + std::string(text) +
                                   "' is not one of error, warning, info, debug");
}

const char* LogLevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kError: return "ERROR";
    case LogLevel::kWarning: return "WARN";
    case LogLevel::kInfo: return "INFO";
    case LogLevel::kDebug: return "DEBUG";
  }
  return "?";
}

Logger::~Logger() {
  MutexLock l(&mu_);
  if (file_) fclose(file_);
}

Logger& Logger::Default() {
  static Logger* logger = new Logger();  // never destroyed: usable until exit
  return *logger;
}

void Logger::SetLevel(LogLevel level) { level_ = level; }
void Logger::SetStderr(bool enabled) { to_stderr_ = enabled; }

Status Logger::OpenFile(const std::string& path) {
  // 0640: the log names clients, identities and keys; not for every user.
  const int fd = open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
  if (fd < 0) return PosixError("open log file: " + path);
  FILE* f = fdopen(fd, "a");
  if (!f) {
    Status s = PosixError("open log file: " + path);
    close(fd);
    return s;
  }
  MutexLock l(&mu_);
  if (file_) fclose(file_);
  file_ = f;
  path_ = path;
  return Status();
}

Status Logger::Reopen() {
  std::string path;
  {
    MutexLock l(&mu_);
    path = path_;
  }
  if (path.empty()) return Status();
  return OpenFile(path);
}

void Logger::Log(LogLevel level, std::string_view context, const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  LogV(level, context, fmt, ap);
  va_end(ap);
}

void Logger::LogV(LogLevel level, std::string_view context, const char* fmt, va_list ap) {
  char msg[2048];
  vsnprintf(msg, sizeof msg, fmt, ap);
  struct timeval tv;
  gettimeofday(&tv, nullptr);
  struct tm tm;
  gmtime_r(&tv.tv_sec, &tm);
  char stamp[64];
  snprintf(stamp, sizeof stamp, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
           tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
           static_cast<int>(tv.tv_usec / 1000));
  const char* name = LogLevelName(level);
  std::string line;
  line.reserve(96 + context.size() + strlen(msg));
  line += stamp;
  line += ' ';
  line += name;
  line.append(6 - strlen(name), ' ');
  if (!context.empty()) {
    line += '[';
    line += Printable(context);
    line += "] ";
  }
  // One event, one line: nothing from a peer inside msg can break it.
  line += Printable(msg);
  line += '\n';
  MutexLock l(&mu_);
  if (file_) {
    fwrite(line.data(), 1, line.size(), file_);
    fflush(file_);
  }
  if (to_stderr_) {
    // Flushed every line: a loaded library (librados) may have made stderr
    // buffered.
    fwrite(line.data(), 1, line.size(), stderr);
    fflush(stderr);
  }
}

}  // namespace nbdr
