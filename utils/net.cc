// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// Socket helpers; see net.h.
#include "utils/net.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>

#include <cerrno>
#include <cstring>

namespace nbdr {

namespace {

Expected<uint16_t> ParsePort(std::string_view text, std::string_view whole) {
  if (text.empty() || text.size() > 5)
    return Status::Error(EINVAL, "address '" + std::string(whole) + "': bad port");
  unsigned v = 0;
  for (char c : text) {
    if (c < '0' || c > '9')
      return Status::Error(EINVAL, "address '" + std::string(whole) + "': bad port");
    v = v * 10 + static_cast<unsigned>(c - '0');
  }
  if (v > 65535)
    return Status::Error(EINVAL, "address '" + std::string(whole) + "': port above 65535");
  return static_cast<uint16_t>(v);
}

struct AddrInfoDeleter {
  void operator()(addrinfo* ai) const { freeaddrinfo(ai); }
};
using AddrInfoPtr = std::unique_ptr<addrinfo, AddrInfoDeleter>;

Expected<AddrInfoPtr> Resolve(const std::string& host, uint16_t port, bool passive) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0);
  std::string service = std::to_string(port);
  addrinfo* res = nullptr;
  const char* node = (host.empty() || host == "*") ? nullptr : host.c_str();
  int rc = getaddrinfo(node, service.c_str(), &hints, &res);
  if (rc != 0) {
    return Status::Error(rc == EAI_SYSTEM ? errno : EHOSTUNREACH,
                         "resolve '" + host + "': " + gai_strerror(rc));
  }
  return AddrInfoPtr(res);
}

}  // namespace

Expected<HostPort> ParseHostPort(std::string_view text, uint16_t default_port) {
  HostPort hp;
  hp.port = default_port;
  if (!text.empty() && text.front() == '[') {
    size_t close = text.find(']');
    if (close == std::string_view::npos)
      return Status::Error(EINVAL, "address '" + std::string(text) + "': missing ']'");
    hp.host = std::string(text.substr(1, close - 1));
    std::string_view rest = text.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':')
        return Status::Error(EINVAL, "address '" + std::string(text) + "': junk after ']'");
      auto port = ParsePort(rest.substr(1), text);
      if (!port) return port.status();
      hp.port = *port;
    }
  } else if (size_t colon = text.find(':'); colon != std::string_view::npos &&
                                            text.find(':', colon + 1) == std::string_view::npos) {
    hp.host = std::string(text.substr(0, colon));
    auto port = ParsePort(text.substr(colon + 1), text);
    if (!port) return port.status();
    hp.port = *port;
  } else {
    hp.host = std::string(text);  // a name, an IPv4 address or a bare IPv6
  }
  if (hp.host.empty()) return Status::Error(EINVAL, "address '" + std::string(text) + "': no host");
  return hp;
}

std::string FormatHostPort(const HostPort& hp) {
  const bool v6 = hp.host.find(':') != std::string::npos;
  return (v6 ? "[" + hp.host + "]" : hp.host) + ":" + std::to_string(hp.port);
}

Status ValidateRunnerAddress(std::string_view text) {
  const std::string shown(text.substr(0, 64));
  if (text.size() > 255) return Status::Error(EINVAL, "runner address '" + shown + "...' is too long");
  for (unsigned char c : text)
    if (c <= ' ' || c >= 0x7f)
      return Status::Error(EINVAL, "runner address holds a space or a control character");
  auto hp = ParseHostPort(text, 0);
  if (!hp) return hp.status();
  if (hp->port == 0 || FormatHostPort(*hp) != text)
    return Status::Error(EINVAL, "runner address '" + shown + "' is not HOST:PORT");
  return Status();
}

Expected<UniqueFd> ListenTcp(const std::string& host, uint16_t port, int backlog) {
  std::string h = (host == "*") ? "" : host;
  auto ai = Resolve(h, port, true);
  if (!ai) return ai.status();
  // Prefer IPv6 for the wildcard so one socket serves both families.
  addrinfo* pick = nullptr;
  if (h.empty()) {
    for (addrinfo* p = ai->get(); p; p = p->ai_next)
      if (p->ai_family == AF_INET6) pick = p;
  }
  Status last = Status::Error(EADDRNOTAVAIL, "listen " + host + ": no address");
  for (addrinfo* p = pick ? pick : ai->get(); p; p = pick ? nullptr : p->ai_next) {
    UniqueFd fd(socket(p->ai_family, p->ai_socktype | SOCK_CLOEXEC, p->ai_protocol));
    if (!fd.valid()) {
      last = PosixError("socket");
      continue;
    }
    int one = 1;
    setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (p->ai_family == AF_INET6 && h.empty()) {
      int zero = 0;
      setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
    }
    if (bind(fd.get(), p->ai_addr, p->ai_addrlen) < 0) {
      last = PosixError("bind " + FormatSockaddr(p->ai_addr, p->ai_addrlen));
      continue;
    }
    if (listen(fd.get(), backlog) < 0) {
      last = PosixError("listen " + FormatSockaddr(p->ai_addr, p->ai_addrlen));
      continue;
    }
    return fd;
  }
  return last;
}

Expected<UniqueFd> ConnectTcp(const std::string& host, uint16_t port, int timeout_ms) {
  auto ai = Resolve(host, port, false);
  if (!ai) return ai.status();
  Status last = Status::Error(EHOSTUNREACH, "connect " + host + ": no address");
  for (addrinfo* p = ai->get(); p; p = p->ai_next) {
    std::string where = FormatSockaddr(p->ai_addr, p->ai_addrlen);
    UniqueFd fd(socket(p->ai_family, p->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
                       p->ai_protocol));
    if (!fd.valid()) {
      last = PosixError("socket");
      continue;
    }
    int rc = connect(fd.get(), p->ai_addr, p->ai_addrlen);
    if (rc < 0 && errno == EINPROGRESS) {
      pollfd pfd{fd.get(), POLLOUT, 0};
      rc = poll(&pfd, 1, timeout_ms);
      if (rc == 0) {
        last = Status::Error(ETIMEDOUT, "connect " + where + ": timed out");
        continue;
      }
      int err = 0;
      socklen_t len = sizeof err;
      getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len);
      if (rc < 0) err = errno;
      if (err != 0) {
        last = Status::Error(err, "connect " + where + ": " + strerror(err));
        continue;
      }
    } else if (rc < 0) {
      last = PosixError("connect " + where);
      continue;
    }
    int flags = fcntl(fd.get(), F_GETFL);
    fcntl(fd.get(), F_SETFL, flags & ~O_NONBLOCK);
    return fd;
  }
  return last;
}

std::string FormatSockaddr(const struct sockaddr* sa, socklen_t len) {
  char host[NI_MAXHOST], serv[NI_MAXSERV];
  if (getnameinfo(sa, len, host, sizeof host, serv, sizeof serv,
                  NI_NUMERICHOST | NI_NUMERICSERV) != 0)
    return "?";
  if (sa->sa_family == AF_INET6) return std::string("[") + host + "]:" + serv;
  return std::string(host) + ":" + serv;
}

std::string LocalAddress(int fd) {
  sockaddr_storage ss;
  socklen_t len = sizeof ss;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) < 0) return "?";
  return FormatSockaddr(reinterpret_cast<sockaddr*>(&ss), len);
}

std::string PeerAddress(int fd) {
  sockaddr_storage ss;
  socklen_t len = sizeof ss;
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) < 0) return "?";
  return FormatSockaddr(reinterpret_cast<sockaddr*>(&ss), len);
}

std::string PeerHost(int fd) {
  sockaddr_storage ss;
  socklen_t len = sizeof ss;
  char host[NI_MAXHOST];
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) < 0 ||
      getnameinfo(reinterpret_cast<sockaddr*>(&ss), len, host, sizeof host, nullptr, 0,
                  NI_NUMERICHOST) != 0)
    return "?";
  return host;
}

namespace {

Expected<sockaddr_un> UnixAddress(const std::string& path) {
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof sa.sun_path)
    return Status::Error(ENAMETOOLONG, "unix socket path '" + path + "' is empty or longer than " +
                                           std::to_string(sizeof sa.sun_path - 1) + " bytes");
  memcpy(sa.sun_path, path.c_str(), path.size() + 1);
  return sa;
}

}  // namespace

Expected<UniqueFd> ConnectUnix(const std::string& path) {
  auto sa = UnixAddress(path);
  if (!sa) return sa.status();
  UniqueFd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return PosixError("socket");
  if (connect(fd.get(), reinterpret_cast<const sockaddr*>(&*sa), sizeof *sa) < 0)
    return PosixError("connect " + path);
  return fd;
}

Expected<UniqueFd> ListenUnix(const std::string& path, int backlog) {
  auto sa = UnixAddress(path);
  if (!sa) return sa.status();
  struct stat st;
  if (lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode))
      return Status::Error(EEXIST, path + " exists and is not a socket; not replacing it");
    if (ConnectUnix(path).ok())
      return Status::Error(EADDRINUSE, "another process listens on " + path);
    if (unlink(path.c_str()) < 0 && errno != ENOENT) return PosixError("unlink " + path);
  }
  UniqueFd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return PosixError("socket");
  if (bind(fd.get(), reinterpret_cast<const sockaddr*>(&*sa), sizeof *sa) < 0)
    return PosixError("bind " + path);
  if (chmod(path.c_str(), 0666) < 0 || listen(fd.get(), backlog) < 0) {
    Status s = PosixError("listen " + path);
    unlink(path.c_str());
    return s;
  }
  return fd;
}

uint16_t LocalPort(int fd) {
  sockaddr_storage ss;
  socklen_t len = sizeof ss;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) < 0) return 0;
  if (ss.ss_family == AF_INET) return ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
  if (ss.ss_family == AF_INET6) return ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
  return 0;
}

bool IsWildcardOrLoopback(const std::string& host) {
  if (host.empty() || host == "*" || host == "0.0.0.0" || host == "::") return true;
  return IsLoopbackHost(host);
}

bool IsLoopbackHost(const std::string& host) {
  if (host == "localhost") return true;
  in_addr v4;
  if (inet_pton(AF_INET, host.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  in6_addr v6;
  if (inet_pton(AF_INET6, host.c_str(), &v6) == 1) {
    if (IN6_IS_ADDR_LOOPBACK(&v6)) return true;
    return IN6_IS_ADDR_V4MAPPED(&v6) && v6.s6_addr[12] == 127;
  }
  return false;  // a name: it may resolve anywhere
}

void SetNoDelay(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

namespace {
timeval ToTimeval(std::chrono::microseconds t) {
  return timeval{static_cast<time_t>(t.count() / 1000000),
                 static_cast<suseconds_t>(t.count() % 1000000)};
}
}  // namespace

void SetRecvTimeout(int fd, std::chrono::microseconds t) {
  timeval tv = ToTimeval(t);
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
}

void SetSendTimeout(int fd, std::chrono::microseconds t) {
  timeval tv = ToTimeval(t);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

void SetKeepalive(int fd, int idle_s, int interval_s, int count) {
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
  setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle_s, sizeof idle_s);
  setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval_s, sizeof interval_s);
  setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof count);
}

Status WriteAll(int fd, const void* buf, size_t len) {
  const char* p = static_cast<const char*>(buf);
  while (len > 0) {
    ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return PosixError("send");
    }
    p += n;
    len -= static_cast<size_t>(n);
  }
  return Status();
}

Status ReadAll(int fd, void* buf, size_t len) {
  char* p = static_cast<char*>(buf);
  while (len > 0) {
    ssize_t n = recv(fd, p, len, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return PosixError("recv");
    }
    if (n == 0) return Status::Error(ECONNRESET, "recv: connection closed by peer");
    p += n;
    len -= static_cast<size_t>(n);
  }
  return Status();
}

}  // namespace nbdr
