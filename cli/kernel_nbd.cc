// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// nbd.ko through netlink; see kernel_nbd.h.
#include "cli/kernel_nbd.h"

#include <libkmod.h>
#include <sys/socket.h>
#include <syslog.h>
#include <linux/nbd-netlink.h>
#include <netlink/genl/ctrl.h>
#include <netlink/genl/genl.h>
#include <netlink/netlink.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>

namespace nbdr {

namespace {

struct SockDeleter {
  void operator()(nl_sock* s) const { nl_socket_free(s); }
};
struct MsgDeleter {
  void operator()(nl_msg* m) const { nlmsg_free(m); }
};
using NlSock = std::unique_ptr<nl_sock, SockDeleter>;
using NlMsg = std::unique_ptr<nl_msg, MsgDeleter>;

// libnl error codes are not errnos; keep the ones an operator can act on.
int NlToErrno(int nl_err) {
  switch (-nl_err) {
    case NLE_BUSY: return EBUSY;
    case NLE_PERM: return EPERM;
    case NLE_INVAL: return EINVAL;
    case NLE_NOMEM: return ENOMEM;
    case NLE_OBJ_NOTFOUND: return ENOENT;
    case NLE_NODEV: return ENODEV;
    default: return EIO;
  }
}

Expected<std::pair<NlSock, int>> OpenNbdFamily() {
  NlSock sk(nl_socket_alloc());
  if (!sk) return Status::Error(ENOMEM, "netlink: cannot allocate a socket");
  if (int rc = genl_connect(sk.get()); rc < 0)
    return Status::Error(NlToErrno(rc), std::string("netlink: ") + nl_geterror(rc));
  int family = genl_ctrl_resolve(sk.get(), NBD_GENL_FAMILY_NAME);
  if (family < 0)
    return Status::Error(ENODEV,
                         "the kernel has no 'nbd' netlink family: is the nbd module loaded?");
  return std::make_pair(std::move(sk), family);
}

// A netlink socket bound to the nbd family and a message for cmd.
struct NbdMessage {
  NlSock sk;
  NlMsg msg;
};

Expected<NbdMessage> NewNbdMessage(uint8_t cmd) {
  auto fam = OpenNbdFamily();
  if (!fam) return fam.status();
  NbdMessage m{std::move(fam->first), NlMsg(nlmsg_alloc())};
  if (!m.msg) return Status::Error(ENOMEM, "netlink: cannot allocate a message");
  genlmsg_put(m.msg.get(), NL_AUTO_PORT, NL_AUTO_SEQ, fam->second, 0, 0, cmd, 0);
  return m;
}

// Sends m and waits for the kernel's answer; what names the command in an
// error.
Status SendNbdMessage(NbdMessage* m, const std::string& what) {
  int rc = nl_send_sync(m->sk.get(), m->msg.release());
  if (rc < 0) return Status::Error(NlToErrno(rc), what + ": " + nl_geterror(rc));
  return Status();
}

// Parses the NBD family's attributes of a generic netlink message into
// attrs; false when the message is malformed.
bool ParseNbdAttrs(nl_msg* msg, nlattr* (&attrs)[NBD_ATTR_MAX + 1]) {
  genlmsghdr* gh = static_cast<genlmsghdr*>(nlmsg_data(nlmsg_hdr(msg)));
  return nla_parse(attrs, NBD_ATTR_MAX, genlmsg_attrdata(gh, 0), genlmsg_attrlen(gh, 0),
                   nullptr) == 0;
}

int OnConnectReply(nl_msg* msg, void* arg) {
  auto* index = static_cast<int*>(arg);
  nlattr* attrs[NBD_ATTR_MAX + 1];
  if (ParseNbdAttrs(msg, attrs) && attrs[NBD_ATTR_INDEX])
    *index = static_cast<int>(nla_get_u32(attrs[NBD_ATTR_INDEX]));
  return NL_OK;
}

// Adds NBD_ATTR_SOCKETS with one NBD_SOCK_ITEM per descriptor. Each
// socket is set to reset when the kernel lets it go (SO_LINGER 0): when
// the kernel gives a connection up (a timeout, a dead link) and takes
// another in its place, what it had queued and not yet sent on the old
// one is dropped, not delivered later to a runner it no longer uses
// (fencing; see the README's High availability section).
bool PutSockets(nl_msg* msg, const std::vector<int>& sockets) {
  nlattr* socks = nla_nest_start(msg, NBD_ATTR_SOCKETS);
  if (!socks) return false;
  for (int fd : sockets) {
    const linger reset_on_release{1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset_on_release, sizeof reset_on_release);
    nlattr* item = nla_nest_start(msg, NBD_SOCK_ITEM);
    if (!item || nla_put_u32(msg, NBD_SOCK_FD, static_cast<uint32_t>(fd)) != 0) return false;
    nla_nest_end(msg, item);
  }
  nla_nest_end(msg, socks);
  return true;
}

struct StatusCollector {
  std::vector<KernelDevice> devices;
};

int OnStatusReply(nl_msg* msg, void* arg) {
  auto* out = static_cast<StatusCollector*>(arg);
  nlattr* attrs[NBD_ATTR_MAX + 1];
  if (!ParseNbdAttrs(msg, attrs) || !attrs[NBD_ATTR_DEVICE_LIST]) return NL_OK;
  nlattr* item;
  int rem;
  nla_for_each_nested(item, attrs[NBD_ATTR_DEVICE_LIST], rem) {
    nlattr* dev[NBD_DEVICE_ATTR_MAX + 1];
    if (nla_parse_nested(dev, NBD_DEVICE_ATTR_MAX, item, nullptr) || !dev[NBD_DEVICE_INDEX])
      continue;
    out->devices.push_back({static_cast<int>(nla_get_u32(dev[NBD_DEVICE_INDEX])),
                            dev[NBD_DEVICE_CONNECTED] && nla_get_u8(dev[NBD_DEVICE_CONNECTED])});
  }
  return NL_OK;
}

// libkmod's error lines go into *data (the last one wins) instead of
// stderr: nbd-cli's own message carries them.
void KeepKmodError(void* data, int priority, const char*, int, const char*, const char* format,
                   va_list args) {
  if (priority > LOG_ERR) return;
  char line[512];
  vsnprintf(line, sizeof line, format, args);
  std::string& kept = *static_cast<std::string*>(data);
  kept = line;
  while (!kept.empty() && (kept.back() == '\n' || kept.back() == ' ')) kept.pop_back();
}

}  // namespace

Status EnsureKernelModule(const std::string& name) {
  const std::string sys = "/sys/module/" + name;
  if (access(sys.c_str(), F_OK) == 0) return Status();
  kmod_ctx* ctx = kmod_new(nullptr, nullptr);
  if (!ctx)
    return Status::Error(ENOENT, "the " + name + " module is not loaded and libkmod cannot start");
  std::string kmod_error;
  kmod_set_log_fn(ctx, KeepKmodError, &kmod_error);
  kmod_module* mod = nullptr;
  int rc = kmod_module_new_from_name(ctx, name.c_str(), &mod);
  if (rc == 0) rc = kmod_module_probe_insert_module(mod, 0, nullptr, nullptr, nullptr, nullptr);
  if (mod) kmod_module_unref(mod);
  kmod_unref(ctx);
  if (rc < 0 || access(sys.c_str(), F_OK) != 0)
    return Status::Error(rc < 0 ? -rc : ENOENT,
                         "cannot load the " + name + " kernel module: " +
                             (rc < 0 ? strerror(-rc) : "not found") +
                             (kmod_error.empty() ? "" : " (libkmod: " + kmod_error + ")") +
                             "; is it built for this kernel? try 'modprobe " + name + "'");
  return Status();
}

Status EnsureNbdModule() { return EnsureKernelModule("nbd"); }

Expected<int> NbdConnect(const KernelConnect& c) {
  auto m = NewNbdMessage(NBD_CMD_CONNECT);
  if (!m) return m.status();
  auto& [sk, msg] = *m;
  bool ok = true;
  if (c.index >= 0)
    ok &= nla_put_u32(msg.get(), NBD_ATTR_INDEX, static_cast<uint32_t>(c.index)) == 0;
  ok &= nla_put_u64(msg.get(), NBD_ATTR_SIZE_BYTES, c.size) == 0;
  ok &= nla_put_u64(msg.get(), NBD_ATTR_BLOCK_SIZE_BYTES, c.block_size) == 0;
  ok &= nla_put_u64(msg.get(), NBD_ATTR_SERVER_FLAGS, c.server_flags) == 0;
  ok &= nla_put_u64(msg.get(), NBD_ATTR_TIMEOUT, c.timeout_s) == 0;
  if (c.dead_conn_timeout_s)
    ok &= nla_put_u64(msg.get(), NBD_ATTR_DEAD_CONN_TIMEOUT, c.dead_conn_timeout_s) == 0;
  if (!c.backend_id.empty())
    ok &= nla_put_string(msg.get(), NBD_ATTR_BACKEND_IDENTIFIER, c.backend_id.c_str()) == 0;
  ok &= PutSockets(msg.get(), c.sockets);
  if (!ok) return Status::Error(EMSGSIZE, "netlink: NBD_CMD_CONNECT message too large");
  int index = -1;
  nl_socket_modify_cb(sk.get(), NL_CB_VALID, NL_CB_CUSTOM, OnConnectReply, &index);
  int rc = nl_send_sync(sk.get(), msg.release());
  if (rc < 0) {
    std::string why = nl_geterror(rc);
    if (-rc == NLE_BUSY) why = "the device is busy (already connected?)";
    return Status::Error(NlToErrno(rc), "NBD_CMD_CONNECT: " + why);
  }
  if (index < 0) return Status::Error(EIO, "NBD_CMD_CONNECT: the kernel did not say which device");
  return index;
}

Status NbdDisconnect(int index) {
  auto m = NewNbdMessage(NBD_CMD_DISCONNECT);
  if (!m) return m.status();
  auto& [sk, msg] = *m;
  nla_put_u32(msg.get(), NBD_ATTR_INDEX, static_cast<uint32_t>(index));
  return SendNbdMessage(&*m, "NBD_CMD_DISCONNECT /dev/nbd" + std::to_string(index));
}

Status NbdReconfigure(int index, const std::vector<int>& sockets, const std::string& backend_id) {
  auto m = NewNbdMessage(NBD_CMD_RECONFIGURE);
  if (!m) return m.status();
  auto& [sk, msg] = *m;
  nla_put_u32(msg.get(), NBD_ATTR_INDEX, static_cast<uint32_t>(index));
  bool ok = backend_id.empty() ||
            nla_put_string(msg.get(), NBD_ATTR_BACKEND_IDENTIFIER, backend_id.c_str()) == 0;
  if (!ok || !PutSockets(msg.get(), sockets))
    return Status::Error(EMSGSIZE, "netlink: NBD_CMD_RECONFIGURE message too large");
  return SendNbdMessage(&*m, "NBD_CMD_RECONFIGURE /dev/nbd" + std::to_string(index));
}

// The backend identifier the device was connected with ("" when none):
// the kernel refuses a RECONFIGURE that does not repeat it.
static std::string DeviceBackendId(int index) {
  std::string id;
  if (FILE* f = fopen(("/sys/block/nbd" + std::to_string(index) + "/backend").c_str(), "r")) {
    char buf[4096];
    if (fgets(buf, sizeof buf, f)) id = buf;
    fclose(f);
  }
  while (!id.empty() && id.back() == '\n') id.pop_back();
  return id;
}

Status NbdResize(int index, uint64_t bytes) {
  auto m = NewNbdMessage(NBD_CMD_RECONFIGURE);
  if (!m) return m.status();
  auto& [sk, msg] = *m;
  nla_put_u32(msg.get(), NBD_ATTR_INDEX, static_cast<uint32_t>(index));
  const std::string backend_id = DeviceBackendId(index);
  if (nla_put_u64(msg.get(), NBD_ATTR_SIZE_BYTES, bytes) != 0 ||
      (!backend_id.empty() &&
       nla_put_string(msg.get(), NBD_ATTR_BACKEND_IDENTIFIER, backend_id.c_str()) != 0))
    return Status::Error(EMSGSIZE, "netlink: NBD_CMD_RECONFIGURE message too large");
  return SendNbdMessage(&*m, "resize /dev/nbd" + std::to_string(index) + " (NBD_CMD_RECONFIGURE)");
}

Expected<bool> GrowDevice(int index, uint64_t size) {
  const uint64_t have = NbdDeviceBytes(index);
  if (have == 0 || size <= have) return false;
  if (Status s = NbdResize(index, size); !s.ok()) return s;
  return true;
}

uint64_t NbdDeviceBytes(int index) {
  FILE* f = fopen(("/sys/block/nbd" + std::to_string(index) + "/size").c_str(), "r");
  unsigned long long sectors = 0;
  if (f) {
    if (fscanf(f, "%llu", &sectors) != 1) sectors = 0;
    fclose(f);
  }
  return sectors * 512;
}

namespace {
int OnMulticast(nl_msg* msg, void* arg) {
  auto* dead = static_cast<std::vector<int>*>(arg);
  genlmsghdr* gh = static_cast<genlmsghdr*>(nlmsg_data(nlmsg_hdr(msg)));
  if (gh->cmd != NBD_CMD_LINK_DEAD) return NL_OK;
  nlattr* attrs[NBD_ATTR_MAX + 1];
  if (ParseNbdAttrs(msg, attrs) && attrs[NBD_ATTR_INDEX])
    dead->push_back(static_cast<int>(nla_get_u32(attrs[NBD_ATTR_INDEX])));
  return NL_OK;
}
}  // namespace

Expected<LinkDeadListener> LinkDeadListener::Open() {
  LinkDeadListener l;
  l.sk_ = nl_socket_alloc();
  if (!l.sk_) return Status::Error(ENOMEM, "netlink: cannot allocate a socket");
  if (int rc = genl_connect(l.sk_); rc < 0)
    return Status::Error(NlToErrno(rc), std::string("netlink: ") + nl_geterror(rc));
  int grp = genl_ctrl_resolve_grp(l.sk_, NBD_GENL_FAMILY_NAME, NBD_GENL_MCAST_GROUP_NAME);
  if (grp < 0)
    return Status::Error(ENODEV, "the kernel has no nbd multicast group: is nbd loaded?");
  if (int rc = nl_socket_add_membership(l.sk_, grp); rc < 0)
    return Status::Error(NlToErrno(rc), std::string("netlink join: ") + nl_geterror(rc));
  nl_socket_disable_seq_check(l.sk_);
  nl_socket_set_nonblocking(l.sk_);
  nl_socket_modify_cb(l.sk_, NL_CB_VALID, NL_CB_CUSTOM, OnMulticast, &l.dead_);
  return l;
}

LinkDeadListener::LinkDeadListener(LinkDeadListener&& o) noexcept : sk_(o.sk_) {
  o.sk_ = nullptr;
  if (sk_) nl_socket_modify_cb(sk_, NL_CB_VALID, NL_CB_CUSTOM, OnMulticast, &dead_);
}
LinkDeadListener& LinkDeadListener::operator=(LinkDeadListener&& o) noexcept {
  std::swap(sk_, o.sk_);
  if (sk_) nl_socket_modify_cb(sk_, NL_CB_VALID, NL_CB_CUSTOM, OnMulticast, &dead_);
  return *this;
}
LinkDeadListener::~LinkDeadListener() {
  if (sk_) nl_socket_free(sk_);
}
int LinkDeadListener::fd() const { return nl_socket_get_fd(sk_); }
std::vector<int> LinkDeadListener::Drain() {
  dead_.clear();
  while (nl_recvmsgs_default(sk_) >= 0) {
  }
  return dead_;
}

Expected<std::vector<KernelDevice>> NbdStatus() {
  auto m = NewNbdMessage(NBD_CMD_STATUS);
  if (!m) return m.status();
  auto& [sk, msg] = *m;
  StatusCollector out;
  nl_socket_modify_cb(sk.get(), NL_CB_VALID, NL_CB_CUSTOM, OnStatusReply, &out);
  int rc = nl_send_sync(sk.get(), msg.release());
  if (rc < 0)
    return Status::Error(NlToErrno(rc), std::string("NBD_CMD_STATUS: ") + nl_geterror(rc));
  return out.devices;
}

bool NbdConnected(int index) {
  return access(("/sys/block/nbd" + std::to_string(index) + "/pid").c_str(), F_OK) == 0;
}

std::string NbdBackend(int index) {
  std::ifstream in("/sys/block/nbd" + std::to_string(index) + "/backend");
  std::string line;
  std::getline(in, line);
  return line;
}

std::string NbdDeviceUse(int index) {
  namespace fs = std::filesystem;
  const std::string disk = "nbd" + std::to_string(index);
  const fs::path sys = "/sys/block/" + disk;
  // The disk and its partitions: name -> "major:minor".
  std::vector<std::pair<std::string, std::string>> parts;
  auto add = [&](const std::string& name, const fs::path& dir) {
    std::ifstream in(dir / "dev");
    std::string dev;
    if (std::getline(in, dev) && !dev.empty()) parts.emplace_back(name, dev);
  };
  add(disk, sys);
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(sys, ec)) {
    std::string name = e.path().filename();
    if (name.rfind(disk + "p", 0) == 0) add(name, e.path());
  }
  for (const auto& [name, dev] : parts) {
    fs::path dir = name == disk ? sys : sys / name;
    for (const auto& h : fs::directory_iterator(dir / "holders", ec))
      return "/dev/" + name + " is held by " + h.path().filename().string();
  }
  std::ifstream mounts("/proc/self/mountinfo");
  std::string line;
  while (std::getline(mounts, line)) {
    // "ID PARENT MAJOR:MINOR ROOT MOUNTPOINT ..."
    char majmin[32], point[4096];
    if (sscanf(line.c_str(), "%*s %*s %31s %*s %4095s", majmin, point) != 2) continue;
    for (const auto& [name, dev] : parts)
      if (dev == majmin) return "/dev/" + name + " is mounted on " + point;
  }
  std::ifstream swaps("/proc/swaps");
  while (std::getline(swaps, line)) {
    std::string path = line.substr(0, line.find_first_of(" \t"));
    for (const auto& [name, dev] : parts)
      if (path == "/dev/" + name) return "/dev/" + name + " is used as swap";
  }
  return "";
}

}  // namespace nbdr
