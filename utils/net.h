// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// Socket helpers shared by the runner and the CLI: resolving "host",
// "host:port", "[v6addr]:port"; listening and connecting over IPv4, IPv6 or
// host names; socket options. Functions are thread-safe; returned
// descriptors are owned by the caller through UniqueFd.
#pragma once

#include <sys/socket.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "utils/status.h"
#include "utils/unique_fd.h"

namespace nbdr {

struct HostPort {
  std::string host;  // without brackets
  uint16_t port = 0;
};

// Parses "host", "host:port", "[v6]", "[v6]:port", "v6" (bare IPv6 without
// a port). default_port fills a missing port.
Expected<HostPort> ParseHostPort(std::string_view text, uint16_t default_port);

// "host:port", with brackets around an IPv6 address ("[::1]:24110").
std::string FormatHostPort(const HostPort& hp);

// A runner of a backstore's runner set as it travels and is stored:
// "HOST:PORT" in FormatHostPort's form, printable, at most 255 bytes.
Status ValidateRunnerAddress(std::string_view text);

// A unix stream socket listening at path, mode 0666 (who may do what is
// decided per caller, from SO_PEERCRED). A socket file left by a process
// that is gone is replaced; one where a process still listens is EADDRINUSE.
Expected<UniqueFd> ListenUnix(const std::string& path, int backlog = 64);
// Connects to the unix stream socket at path.
Expected<UniqueFd> ConnectUnix(const std::string& path);

// Binds and listens on host:port (port 0: the kernel picks one). Host may
// be an address, a name, "" or "*" (all addresses, IPv6 and IPv4).
Expected<UniqueFd> ListenTcp(const std::string& host, uint16_t port, int backlog = 128);

// Connects to host:port, trying each resolved address in turn, waiting at
// most timeout_ms for each.
Expected<UniqueFd> ConnectTcp(const std::string& host, uint16_t port, int timeout_ms);

// "127.0.0.1:24111" / "[::1]:24111" for a socket's local or peer address.
std::string LocalAddress(int fd);
std::string PeerAddress(int fd);
// The peer's address without its port ("127.0.0.1", "::1"): who a
// per-peer limit counts.
std::string PeerHost(int fd);
uint16_t LocalPort(int fd);
// Formats a sockaddr as above.
std::string FormatSockaddr(const struct sockaddr* sa, socklen_t len);
// True when host is a wildcard or loopback address ("", "*", "0.0.0.0",
// "::", "127.x", "::1", "localhost").
bool IsWildcardOrLoopback(const std::string& host);
// True only for a loopback address (127.0.0.0/8, ::1, ::ffff:127.x) or
// "localhost"; a wildcard, another address or another name is not.
bool IsLoopbackHost(const std::string& host);

// TCP_NODELAY and SO_KEEPALIVE with the given idle/interval/count.
void SetNoDelay(int fd);
void SetKeepalive(int fd, int idle_s, int interval_s, int count);
// Bounds every recv / send on fd by t (0 = no bound): SO_RCVTIMEO / SO_SNDTIMEO.
void SetRecvTimeout(int fd, std::chrono::microseconds t);
void SetSendTimeout(int fd, std::chrono::microseconds t);

// Writes the whole buffer, retrying on EINTR and short writes.
Status WriteAll(int fd, const void* buf, size_t len);
// Reads exactly len bytes; ECONNRESET-style Status on EOF.
Status ReadAll(int fd, void* buf, size_t len);

}  // namespace nbdr
