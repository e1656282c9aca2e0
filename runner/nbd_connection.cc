// One NBD client connection: handshake and transmission. See
// nbd_connection.h and doc/proto.md of the NetworkBlockDevice project.
#include "runner/nbd_connection.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>
#include <vector>

#include "utils/log.h"
#include "utils/names.h"
#include "utils/net.h"

namespace nbdr {

using namespace nbd;

namespace {

constexpr size_t kMaxOptionLength = 64 * 1024;
constexpr size_t kReadBufferSize = 256 * 1024;
// Payloads at least this large are received straight into their own
// buffer, not through the read buffer.
constexpr size_t kDirectReceiveMin = kReadBufferSize / 2;
constexpr uint32_t kMaxExtentsPerReply = 2048;
constexpr uint64_t kMaxInflightRequests = 1024;

// The connection whose own thread (a reader or the flusher) this is; any
// other thread that sends replies is a backend's, shared by connections.
thread_local const NbdConnection* t_connection = nullptr;
// Reply coalescing (see NbdConnection::ReaderLoop), between a reader and
// QueueReply on the same thread:
// - set by the reader while it submits a request whose reply may wait, if
//   the handler answers it inline:
thread_local bool t_may_hold_reply = false;
// - set by QueueReply: the handler answered the request inline, on the
//   reader's thread:
thread_local bool t_answered_inline = false;
// - set by QueueReply: the reply went out at once with kMaxHeldReplies - 1
//   that had waited for it (a full batch):
thread_local bool t_batch_full = false;
// - this reader let replies wait and has not sent them since (cleared
//   when it sends them, or when a full batch goes out).
thread_local bool t_holds_replies = false;

}  // namespace

// One request between submission and the end of its reply's send.
// Inherits the C request so the completion callback can get back to it
// with a static_cast. Replies the core makes without a handler (refusals)
// use one too, and hold an in-flight slot like any request.
struct InflightRequest : nbdr_request {
  NbdConnection* conn = nullptr;
  uint64_t cookie = 0;
  uint16_t command = 0;
  uint64_t accounted_bytes = 0;
  uint8_t* data = nullptr;  // from the connection's BufferPool
  size_t data_capacity = 0;
  std::vector<nbdr_extent> extent_buf;
  uint64_t requested_length = 0;
  // The reply: header, then reply_data (read payload, error message or
  // block status descriptors) written as one iovec pair.
  uint8_t reply_hdr[32];
  uint32_t reply_hdr_len = 0;
  const void* reply_data = nullptr;
  size_t reply_data_len = 0;
  std::vector<uint8_t> descriptors;
};

NbdConnection::NbdConnection(UniqueFd fd, uint64_t id, NbdServer* server)
    : fd_(std::move(fd)),
      id_(id),
      server_(server),
      opts_(server->options()),
      buffers_(std::min<uint64_t>(opts_.max_inflight_bytes, 32u << 20)),
      rbuf_(new uint8_t[kReadBufferSize]) {
  name_ = "conn#" + std::to_string(id_) + " " + PeerAddress(fd_.get());
  max_payload_ = opts_.max_payload;
}

NbdConnection::~NbdConnection() = default;

void NbdConnection::Shutdown() { shutdown(fd_.get(), SHUT_RD); }

void NbdConnection::Run() {
  SetNoDelay(fd_.get());
  SetKeepalive(fd_.get(), opts_.keepalive_idle_s, 10, 6);
  LOG_DEBUG(name_, "connected");
  bool served = Handshake();
  if (served) Transmission();
  WaitForDrain();
  StopFlusher();
  std::string export_name = export_ ? export_->record().ExportName() : "";
  export_.reset();  // before NoteConnectionLost, which looks for other users
  if (served && !client_disconnected_ && !server_->stopping()) {
    // The client vanished without NBD_CMD_DISC: if that was the export's
    // last connection, a kernel mapping on it is dead until its client
    // reconnects.
    server_->registry()->NoteConnectionLost(export_name);
  }
  LOG_DEBUG(name_, "closed");
}

// ---------------------------------------------------------------------
// Handshake

Status NbdConnection::RecvHandshake(void* buf, size_t len) {
  // Every wait is bounded by what is left of the handshake deadline, so a
  // client that sends one byte now and then is dropped on time too.
  auto* out = static_cast<uint8_t*>(buf);
  while (len > 0) {
    auto left = std::chrono::duration_cast<std::chrono::microseconds>(
        handshake_deadline_ - std::chrono::steady_clock::now());
    if (left.count() <= 0) return Status::Error(ETIMEDOUT, "handshake deadline passed");
    SetRecvTimeout(fd_.get(), left);
    ssize_t n = recv(fd_.get(), out, len, 0);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) continue;
      return PosixError("recv");
    }
    if (n == 0) return Status::Error(ECONNRESET, "connection closed by client");
    out += n;
    len -= static_cast<size_t>(n);
  }
  return Status();
}

void NbdConnection::LogHandshakeRecvFailure(const Status& s) const {
  if (s.code() == ETIMEDOUT)
    LOG_WARN(name_, "handshake not finished within %d s; closing", opts_.handshake_timeout_s);
  else
    LOG_DEBUG(name_, "client left during handshake: %s", s.message().c_str());
}

Status NbdConnection::SendOptionReply(uint32_t option, uint32_t type, const void* data,
                                      size_t len) {
  uint8_t hdr[20];
  Put64(hdr, kOptReplyMagic);
  Put32(hdr + 8, option);
  Put32(hdr + 12, type);
  Put32(hdr + 16, static_cast<uint32_t>(len));
  iovec iov[2] = {{hdr, sizeof hdr}, {const_cast<void*>(data), len}};
  SendIov(iov, len ? 2 : 1);
  return send_broken_ ? Status::Error(EPIPE, "send: connection broken") : Status();
}

Status NbdConnection::SendOptionError(uint32_t option, uint32_t type, const std::string& message) {
  LOG_DEBUG(name_, "%s refused (%s): %s", OptionName(option).c_str(), OptionReplyName(type).c_str(),
            message.c_str());
  std::string m = message.substr(0, kMaxNameLength);
  return SendOptionReply(option, type, m.data(), m.size());
}

void NbdConnection::LogExportGiven(uint32_t option, bool base_allocation) const {
  LOG_DEBUG(name_, "%s: size %llu, flags %s, block sizes %u/%u/%u, %s replies%s",
            OptionName(option).c_str(), static_cast<unsigned long long>(size_),
            TransmissionFlagNames(TransmissionFlags()).c_str(), min_block_, preferred_block_,
            max_payload_, structured_ ? "structured" : "simple",
            base_allocation ? ", base:allocation" : "");
}

uint16_t NbdConnection::TransmissionFlags() const {
  uint16_t f = kFlagHasFlags;
  if (readonly_) f |= kFlagReadOnly;
  if (caps_ & NBDR_CAP_FLUSH) f |= kFlagSendFlush;
  if (caps_ & NBDR_CAP_FUA) f |= kFlagSendFua;
  if (!readonly_ && (caps_ & NBDR_CAP_TRIM)) f |= kFlagSendTrim;
  if (!readonly_ && (caps_ & NBDR_CAP_WRITE_ZEROES)) {
    f |= kFlagSendWriteZeroes;
    if (caps_ & NBDR_CAP_FAST_ZERO) f |= kFlagSendFastZero;
  }
  if (structured_) f |= kFlagSendDf;
  if (caps_ & NBDR_CAP_MULTI_CONN) f |= kFlagCanMultiConn;
  if (caps_ & NBDR_CAP_CACHE) f |= kFlagSendCache;
  return f;
}

bool NbdConnection::OpenExportForClient(const std::string& name, std::string* error,
                                        uint32_t* error_type) {
  *error_type = kRepErrUnknown;
  if (server_->stopping()) {
    *error_type = kRepErrShutdown;
    *error = "server is shutting down";
    return false;
  }
  if (!IsValidUtf8(name) || name.find('\0') != std::string::npos) {
    *error_type = kRepErrInvalid;
    *error = "export name is not valid UTF-8";
    return false;
  }
  auto parsed = ParseExportName(name);
  if (!parsed) {
    *error = parsed.status().message();
    return false;
  }
  // The backend's time to open (a slow cluster) is not the client's: the
  // handshake deadline moves by it, up to the allowance.
  auto open_started = std::chrono::steady_clock::now();
  auto exp = server_->registry()->OpenForServing(name);
  auto credit = std::min(open_allowance_, std::chrono::steady_clock::now() - open_started);
  handshake_deadline_ += credit;
  open_allowance_ -= credit;
  if (!exp) {
    *error = exp.status().message();
    // Registered but refused (its object was replaced): policy, not absent.
    if (exp.status().code() == ESTALE) *error_type = kRepErrPolicy;
    return false;
  }
  export_ = *exp;
  const nbdr_export_info& info = export_->info();
  const BackstoreRecord& rec = export_->record();
  size_ = info.size;
  caps_ = info.caps;
  readonly_ = rec.readonly;
  min_block_ = info.min_block ? info.min_block : rec.block_size;
  preferred_block_ =
      std::max<uint32_t>(min_block_, info.preferred_block ? info.preferred_block : 4096);
  max_payload_ = opts_.max_payload;
  if (info.max_payload && info.max_payload < max_payload_) max_payload_ = info.max_payload;
  return true;
}

bool NbdConnection::HandleList(uint32_t option, const std::string& data) {
  if (!data.empty())
    return SendOptionError(option, kRepErrInvalid, "NBD_OPT_LIST takes no data").ok();
  size_t listed = 0;
  for (const auto& r : server_->registry()->List("", "")) {
    std::string name = r.ExportName();
    std::string payload(4, '\0');
    Put32(reinterpret_cast<uint8_t*>(payload.data()), static_cast<uint32_t>(name.size()));
    payload += name;
    if (!SendOptionReply(option, kRepServer, payload.data(), payload.size()).ok()) return false;
    listed++;
  }
  LOG_DEBUG(name_, "NBD_OPT_LIST: %zu export(s) listed", listed);
  return SendOptionReply(option, kRepAck, nullptr, 0).ok();
}

bool NbdConnection::HandleInfoOrGo(uint32_t option, const std::string& data,
                                   bool* enter_transmission) {
  *enter_transmission = false;
  const auto* p = reinterpret_cast<const uint8_t*>(data.data());
  if (data.size() < 6)
    return SendOptionError(option, kRepErrInvalid, "option too short").ok();
  uint32_t name_len = Get32(p);
  if (name_len > data.size() - 6)
    return SendOptionError(option, kRepErrInvalid, "export name length exceeds option length").ok();
  std::string name = data.substr(4, name_len);
  uint16_t nreq = Get16(p + 4 + name_len);
  if (data.size() != 6 + name_len + 2ull * nreq)
    return SendOptionError(option, kRepErrInvalid,
                           "information request count does not match length")
        .ok();
  bool want_name = false, want_description = false;
  for (uint16_t i = 0; i < nreq; i++) {
    uint16_t r = Get16(p + 6 + name_len + 2 * i);
    if (r == kInfoName) want_name = true;
    if (r == kInfoDescription) want_description = true;
    if (r == kInfoBlockSize) client_knows_block_size_ = true;
  }
  std::string error;
  uint32_t error_type;
  if (!OpenExportForClient(name, &error, &error_type))
    return SendOptionError(option, error_type, error).ok();
  name_ = "conn#" + std::to_string(id_) + " " + PeerAddress(fd_.get()) + " " + name;
  LogExportGiven(option, base_allocation_ && meta_export_ == name);

  uint8_t buf[12];
  Put16(buf, kInfoExport);
  Put64(buf + 2, size_);
  Put16(buf + 10, TransmissionFlags());
  if (!SendOptionReply(option, kRepInfo, buf, 12).ok()) return false;
  if (want_name) {
    std::string payload(2, '\0');
    Put16(reinterpret_cast<uint8_t*>(payload.data()), kInfoName);
    payload += name;
    if (!SendOptionReply(option, kRepInfo, payload.data(), payload.size()).ok()) return false;
  }
  if (want_description) {
    const BackstoreRecord& rec = export_->record();
    std::string payload(2, '\0');
    Put16(reinterpret_cast<uint8_t*>(payload.data()), kInfoDescription);
    payload += rec.type + " backstore " + rec.key + (rec.readonly ? " (read-only)" : "");
    if (!SendOptionReply(option, kRepInfo, payload.data(), payload.size()).ok()) return false;
  }
  uint8_t bs[14];
  Put16(bs, kInfoBlockSize);
  Put32(bs + 2, min_block_);
  Put32(bs + 6, preferred_block_);
  Put32(bs + 10, max_payload_);
  if (!SendOptionReply(option, kRepInfo, bs, sizeof bs).ok()) return false;
  if (!SendOptionReply(option, kRepAck, nullptr, 0).ok()) return false;
  if (option == kOptGo) {
    if (base_allocation_ && meta_export_ != name) base_allocation_ = false;
    *enter_transmission = true;
  } else {
    export_.reset();  // NBD_OPT_INFO: nothing stays open
  }
  return true;
}

bool NbdConnection::HandleMetaContext(uint32_t option, const std::string& data) {
  const bool set = option == kOptSetMetaContext;
  if (set && !structured_)
    return SendOptionError(option, kRepErrInvalid, "negotiate structured replies first").ok();
  const auto* p = reinterpret_cast<const uint8_t*>(data.data());
  size_t len = data.size();
  if (len < 8) return SendOptionError(option, kRepErrInvalid, "option too short").ok();
  uint32_t name_len = Get32(p);
  if (name_len > len - 8)
    return SendOptionError(option, kRepErrInvalid, "export name length exceeds option length").ok();
  std::string name = data.substr(4, name_len);
  uint32_t nqueries = Get32(p + 4 + name_len);
  size_t pos = 8 + name_len;
  std::vector<std::string> queries;
  for (uint32_t i = 0; i < nqueries; i++) {
    if (len - pos < 4)
      return SendOptionError(option, kRepErrInvalid, "query count exceeds option length").ok();
    uint32_t qlen = Get32(p + pos);
    pos += 4;
    if (qlen > len - pos)
      return SendOptionError(option, kRepErrInvalid, "query length exceeds option length").ok();
    if (qlen > kMaxNameLength)
      return SendOptionError(option, kRepErrTooBig, "query longer than 4096 bytes").ok();
    queries.push_back(data.substr(pos, qlen));
    pos += qlen;
  }
  if (pos != len)
    return SendOptionError(option, kRepErrInvalid, "trailing bytes after the queries").ok();
  auto parsed = ParseExportName(name);
  if (!parsed || !server_->registry()->Get(parsed->type, parsed->key).ok())
    return SendOptionError(option, kRepErrUnknown, "no backstore " + name + " on this runner").ok();

  bool match = false;
  if (!set && queries.empty()) match = true;
  for (const auto& q : queries) {
    if (q == kBaseAllocation || (!set && q == "base:")) match = true;
  }
  if (match) {
    std::string payload(4, '\0');
    Put32(reinterpret_cast<uint8_t*>(payload.data()), kBaseAllocationId);
    payload += kBaseAllocation;
    if (!SendOptionReply(option, kRepMetaContext, payload.data(), payload.size()).ok())
      return false;
  }
  std::string asked;
  for (const auto& q : queries) asked += (asked.empty() ? "" : ", ") + q;
  LOG_DEBUG(name_, "%s %s [%s]: %s", OptionName(option).c_str(), name.c_str(), asked.c_str(),
            match ? "base:allocation (context id 1)" : "no context");
  if (set) {
    base_allocation_ = match;
    meta_export_ = name;
  }
  return SendOptionReply(option, kRepAck, nullptr, 0).ok();
}

bool NbdConnection::Handshake() {
  handshake_deadline_ =
      std::chrono::steady_clock::now() + std::chrono::seconds(opts_.handshake_timeout_s);
  open_allowance_ = std::chrono::seconds(std::max(opts_.handshake_timeout_s, kMinOpenAllowanceS));
  SetSendTimeout(fd_.get(), std::chrono::seconds(opts_.handshake_timeout_s));

  uint8_t greeting[18];
  Put64(greeting, kNbdMagic);
  Put64(greeting + 8, kIHaveOpt);
  Put16(greeting + 16, kFlagFixedNewstyle | kFlagNoZeroes);
  if (!WriteAll(fd_.get(), greeting, sizeof greeting).ok()) return false;

  uint8_t cflags_buf[4];
  if (!RecvHandshake(cflags_buf, 4).ok()) {
    LOG_DEBUG(name_, "no client flags; closing");
    return false;
  }
  uint32_t cflags = Get32(cflags_buf);
  if (cflags & ~(kClientFlagFixedNewstyle | kClientFlagNoZeroes)) {
    LOG_WARN(name_, "unknown client flags 0x%x; closing", cflags);
    return false;
  }
  if (!(cflags & kClientFlagFixedNewstyle)) {
    LOG_WARN(name_, "client does not speak fixed newstyle; closing");
    return false;
  }
  no_zeroes_ = cflags & kClientFlagNoZeroes;
  LOG_DEBUG(name_, "client flags: fixed-newstyle%s", no_zeroes_ ? " no-zeroes" : "");

  for (int count = 0;; count++) {
    if (std::chrono::steady_clock::now() > handshake_deadline_) {
      LOG_WARN(name_, "handshake not finished within %d s; closing", opts_.handshake_timeout_s);
      return false;
    }
    if (count >= opts_.max_options) {
      LOG_WARN(name_, "more than %d options in one handshake; closing", opts_.max_options);
      return false;
    }
    uint8_t hdr[16];
    if (Status s = RecvHandshake(hdr, sizeof hdr); !s.ok()) {
      LogHandshakeRecvFailure(s);
      return false;
    }
    if (Get64(hdr) != kIHaveOpt) {
      LOG_WARN(name_, "bad option magic; closing");
      return false;
    }
    uint32_t option = Get32(hdr + 8);
    uint32_t len = Get32(hdr + 12);
    if (len > kMaxOptionLength) {
      LOG_WARN(name_, "%s with %u bytes of data exceeds the %zu byte limit; closing",
               OptionName(option).c_str(), len, kMaxOptionLength);
      if (option != kOptExportName)
        (void)SendOptionError(option, kRepErrTooBig, "option data too large");
      return false;
    }
    std::string data(len, '\0');
    if (len) {
      if (Status s = RecvHandshake(data.data(), len); !s.ok()) {
        LogHandshakeRecvFailure(s);
        return false;
      }
    }
    switch (option) {
      case kOptExportName: {
        std::string error;
        uint32_t error_type;
        if (!OpenExportForClient(data, &error, &error_type)) {
          LOG_INFO(name_, "NBD_OPT_EXPORT_NAME refused: %s", error.c_str());
          return false;  // this option has no error path: hang up
        }
        name_ = "conn#" + std::to_string(id_) + " " + PeerAddress(fd_.get()) + " " + data;
        LogExportGiven(option, base_allocation_ && meta_export_ == data);
        uint8_t reply[10 + 124] = {};
        Put64(reply, size_);
        Put16(reply + 8, TransmissionFlags());
        if (!WriteAll(fd_.get(), reply, no_zeroes_ ? 10 : sizeof reply).ok()) return false;
        if (base_allocation_ && meta_export_ != data) base_allocation_ = false;
        return true;
      }
      case kOptAbort:
        (void)SendOptionReply(option, kRepAck, nullptr, 0);
        LOG_DEBUG(name_, "client aborted the handshake");
        return false;
      case kOptList:
        if (!HandleList(option, data)) return false;
        break;
      case kOptInfo:
      case kOptGo: {
        bool go = false;
        if (!HandleInfoOrGo(option, data, &go)) return false;
        if (go) return true;
        break;
      }
      case kOptStructuredReply:
        if (!data.empty()) {
          if (!SendOptionError(option, kRepErrInvalid, "takes no data").ok()) return false;
        } else if (structured_) {
          if (!SendOptionError(option, kRepErrInvalid, "already negotiated").ok()) return false;
        } else {
          structured_ = true;
          LOG_DEBUG(name_, "NBD_OPT_STRUCTURED_REPLY: structured replies on");
          if (!SendOptionReply(option, kRepAck, nullptr, 0).ok()) return false;
        }
        break;
      case kOptListMetaContext:
      case kOptSetMetaContext:
        if (!HandleMetaContext(option, data)) return false;
        break;
      case kOptStartTls:
        if (!SendOptionError(option, kRepErrUnsup, "TLS is not supported by this runner").ok())
          return false;
        break;
      default:
        if (!SendOptionError(option, kRepErrUnsup, "unsupported option (" + std::to_string(len) +
                                                       " bytes of data)")
                 .ok())
          return false;
        break;
    }
  }
}

// ---------------------------------------------------------------------
// Transmission

Status NbdConnection::ReadExact(void* buf, size_t len, uint64_t own_slots) {
  auto* out = static_cast<uint8_t*>(buf);
  while (len > 0) {
    if (rpos_ < rlen_) {
      size_t n = std::min(len, rlen_ - rpos_);
      memcpy(out, rbuf_.get() + rpos_, n);
      rpos_ += n;
      out += n;
      len -= n;
      continue;
    }
    // Large payloads go straight to their destination; after a large
    // write, so does the next request's header (see read_exactly_).
    const bool direct = len >= kDirectReceiveMin;
    uint8_t* dst = direct ? out : rbuf_.get();
    size_t cap = direct || read_exactly_ ? len : kReadBufferSize;
    ssize_t n = Receive(dst, cap);
    if (n < 0) {
      if (errno == EINTR) continue;
      // The idle timeout counts only while nothing is in flight: a client
      // waiting for a slow request's reply is not idle.
      if ((errno == EAGAIN || errno == EWOULDBLOCK) && InFlightBesides(own_slots)) continue;
      return PosixError("recv");
    }
    if (n == 0) return Status::Error(ECONNRESET, "connection closed by client");
    if (dst == out) {
      out += n;
      len -= static_cast<size_t>(n);
    } else {
      rpos_ = 0;
      rlen_ = static_cast<size_t>(n);
    }
  }
  return Status();
}

ssize_t NbdConnection::Receive(void* dst, size_t cap) {
  if (!busy_poll_) return recv(fd_.get(), dst, cap, 0);
  using Clock = std::chrono::steady_clock;
  const auto budget = std::chrono::microseconds(opts_.busy_poll_us);
  const auto start = Clock::now();
  ssize_t n = -1;
  if (last_wait_short_) {
    do {
      n = recv(fd_.get(), dst, cap, MSG_DONTWAIT);
    } while (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) && Clock::now() - start < budget);
    if (n >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
      last_wait_short_ = true;
      return n;
    }
  }
  n = recv(fd_.get(), dst, cap, 0);
  last_wait_short_ = Clock::now() - start < budget;
  return n;
}

Status NbdConnection::Discard(uint64_t len) {
  uint8_t scratch[65536];
  while (len > 0) {
    size_t n = static_cast<size_t>(std::min<uint64_t>(len, sizeof scratch));
    if (Status s = ReadExact(scratch, n); !s.ok()) return s;
    len -= n;
  }
  return Status();
}

int NbdConnection::Validate(const RequestHeader& h, const char** why) const {
  uint16_t allowed = 0;
  bool has_range = true, writes = false, advertised = true;
  switch (h.type) {
    case kCmdRead:
      allowed = structured_ ? kCmdFlagDf : 0;
      break;
    case kCmdWrite:
      allowed = (caps_ & NBDR_CAP_FUA) ? kCmdFlagFua : 0;
      writes = true;
      break;
    case kCmdFlush:
      has_range = false;
      advertised = caps_ & NBDR_CAP_FLUSH;
      break;
    case kCmdTrim:
      allowed = (caps_ & NBDR_CAP_FUA) ? kCmdFlagFua : 0;
      writes = true;
      advertised = caps_ & NBDR_CAP_TRIM;
      break;
    case kCmdWriteZeroes:
      allowed = kCmdFlagNoHole | ((caps_ & NBDR_CAP_FUA) ? kCmdFlagFua : 0) |
                ((caps_ & NBDR_CAP_FAST_ZERO) ? kCmdFlagFastZero : 0);
      writes = true;
      advertised = caps_ & NBDR_CAP_WRITE_ZEROES;
      break;
    case kCmdCache:
      advertised = caps_ & NBDR_CAP_CACHE;
      break;
    case kCmdBlockStatus:
      allowed = kCmdFlagReqOne;
      if (!base_allocation_) {
        *why = "block status without a negotiated meta context";
        return EINVAL;
      }
      break;
    default:
      *why = "unknown command";
      return EINVAL;
  }
  if (!advertised) {
    *why = "command not advertised for this export";
    return EINVAL;
  }
  if (h.flags & ~allowed) {
    *why = "flags not valid for this command";
    return EINVAL;
  }
  if (writes && readonly_) {
    *why = "export is read-only";
    return EPERM;
  }
  if (!has_range) return 0;
  if ((h.type == kCmdRead || h.type == kCmdWrite) && h.length > max_payload_) {
    *why = "length exceeds the maximum payload";
    return EINVAL;
  }
  if (h.length == 0) {
    *why = "zero length";
    return EINVAL;
  }
  if (h.offset > size_ || h.length > size_ - h.offset) {
    *why = "range beyond the end of the export";
    return (h.type == kCmdWrite || h.type == kCmdWriteZeroes) ? ENOSPC : EINVAL;
  }
  uint32_t align = client_knows_block_size_ ? min_block_ : std::min<uint32_t>(min_block_, 512);
  if ((h.offset % align) || (h.length % align)) {
    *why = "offset or length not aligned to the minimum block size";
    return EINVAL;
  }
  return 0;
}

void NbdConnection::Transmission() {
  LOG_INFO(name_, "serving (%s%s%s)", structured_ ? "structured replies" : "simple replies",
           base_allocation_ ? ", base:allocation" : "", readonly_ ? ", read-only" : "");
  SetRecvTimeout(fd_.get(), std::chrono::seconds(opts_.idle_timeout_s));
  SetSendTimeout(fd_.get(), std::chrono::seconds(std::max(opts_.idle_timeout_s, 60)));
  busy_poll_ = opts_.busy_poll_us > 0;
  // Leader/follower: the reader threads take turns reading; a request
  // whose handler completes inline is executed and answered by its reader
  // while, if more requests are waiting, another reader takes the next.
  flusher_ = std::thread([this] { FlusherLoop(); });
  std::vector<std::thread> helpers;
  for (int i = 1; i < opts_.readers_per_connection; i++)
    helpers.emplace_back([this] {
      t_connection = this;
      ReaderLoop();
    });
  t_connection = this;
  ReaderLoop();
  t_connection = nullptr;
  for (auto& t : helpers) t.join();
}

// Reply coalescing: while the client keeps many requests in flight, a
// reader that answered a small read or write inline lets the reply wait
// (up to kMaxHeldReplies) if the next request is already complete in the
// read buffer, or arrives within the busy-poll budget, and sends the
// waiting replies in one sendmsg with the last. The client then takes
// several replies per wake-up and per TCP segment, which is where its CPU
// goes on a fast backend. A reader that holds replies keeps the reading
// turn and never blocks before sending them: not in recv (the next
// request is all there), not for room (WaitForRoom), not at the end of
// the stream. Coalescing is tried, and a wait that finds no request turns
// it off for kCoalesceBackoffMin requests, doubled after each further
// miss up to kCoalesceBackoffMax and back to the least only after a full
// batch: a client with one or two requests in flight pays one busy-poll
// wait every few thousand requests. Replies a backend completes on its
// own threads never wait.
void NbdConnection::ReaderLoop() {
  bool my_turn = false;
  bool small_inline = true;  // the last small read or write was answered inline
  for (;;) {
    RequestHeader h;
    Action action;
    uint8_t* payload = nullptr;
    size_t capacity = 0;
    const char* why = "";
    int err = 0;
    bool may_hold = false;
    {
      MutexLock rl(&read_mu_);
      if (!my_turn) {
        rl.Wait(&read_turn_cv_, [this] { return !reading_turn_taken_ || stop_reading_; });
        if (stop_reading_) return;
        reading_turn_taken_ = my_turn = true;
      }
      action = ReadRequest(&h, &payload, &capacity, &err, &why);
      if (action == Action::kStop) {
        stop_reading_ = true;
        read_turn_cv_.notify_all();
      } else {
        may_hold = MayHoldReply(h, action, small_inline);
        if (!may_hold && PassReadingTurn(h)) {
          reading_turn_taken_ = my_turn = false;
          read_turn_cv_.notify_one();
        }
      }
    }
    // A request whose reply does not wait may take long (a large read
    // executed inline): the replies held so far go first.
    if (!may_hold && t_holds_replies) SendHeldReplies();
    t_may_hold_reply = may_hold;
    t_answered_inline = false;
    switch (action) {
      case Action::kSubmit: SubmitRequest(h, payload, capacity); break;
      case Action::kReplyError: ReplyError(h, err, why); break;
      case Action::kReplyExtents: ReplyExtentsWithoutHandler(h); break;
      case Action::kStop: break;
    }
    t_may_hold_reply = false;
    if (action == Action::kSubmit && IsSmallIo(h)) small_inline = t_answered_inline;
    bool keep_holding = false;
    if (may_hold && (t_holds_replies || t_batch_full)) {
      MutexLock rl(&read_mu_);
      if (t_batch_full) coalesce_backoff_ = kCoalesceBackoffMin;  // coalescing pays
      keep_holding = t_holds_replies && NextRequestReady();
    }
    t_batch_full = false;
    if (t_holds_replies && !keep_holding) SendHeldReplies();
    if (action == Action::kStop) return;
  }
}

bool NbdConnection::IsSmallIo(const RequestHeader& h) {
  return (h.type == kCmdRead || h.type == kCmdWrite) && h.length <= kMaxHeldPayload;
}

bool NbdConnection::MayHoldReply(const RequestHeader& h, Action action, bool small_inline) {
  if (coalesce_skip_ > 0) {
    coalesce_skip_--;
  } else if (opts_.busy_poll_us > 0) {
    coalescing_ = true;
  }
  return coalescing_ && small_inline && action == Action::kSubmit && IsSmallIo(h);
}

bool NbdConnection::NextRequestReady() {
  // (read_exactly_ is false here: the request just executed was small.)
  using Clock = std::chrono::steady_clock;
  const auto deadline = Clock::now() + std::chrono::microseconds(opts_.busy_poll_us);
  for (;;) {
    size_t have = rlen_ - rpos_;
    if (have >= kRequestHeaderSize) {
      RequestHeader next = DecodeRequestHeader(rbuf_.get() + rpos_);
      // A request whose reply would not wait is not waited for either.
      if (!IsSmallIo(next)) return false;
      size_t need = kRequestHeaderSize;
      if (next.type == kCmdWrite) need += next.length;
      if (have >= need) return true;
    }
    if (rpos_ > 0) {
      memmove(rbuf_.get(), rbuf_.get() + rpos_, have);
      rpos_ = 0;
      rlen_ = have;
    }
    ssize_t n = recv(fd_.get(), rbuf_.get() + rlen_, kReadBufferSize - rlen_, MSG_DONTWAIT);
    if (n > 0) {
      rlen_ += static_cast<size_t>(n);
      continue;
    }
    // End of stream or an error: the next read finds it.
    if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) return false;
    if (Clock::now() >= deadline) {
      // Part of the next request is here: the client is busy, not done.
      if (have > 0) return false;
      coalescing_ = false;
      coalesce_skip_ = coalesce_backoff_;
      coalesce_backoff_ = std::min(coalesce_backoff_ * 2, kCoalesceBackoffMax);
      last_wait_short_ = false;  // this was the poll; the next read sleeps at once
      return false;
    }
  }
}

void NbdConnection::SendHeldReplies() {
  t_holds_replies = false;
  {
    MutexLock l(&send_mu_);
    if (sending_ || send_queue_.empty()) return;  // a sender takes them along
    sending_ = true;
  }
  SendQueued(/*may_block=*/true);
}

bool NbdConnection::PassReadingTurn(const RequestHeader& h) {
  // Beyond this, executing a request inline (a page-cache read or write)
  // takes long enough to read the next one meanwhile.
  constexpr uint32_t kLargeRequest = 256 * 1024;
  if (opts_.readers_per_connection < 2) return false;
  if (rpos_ < rlen_) return true;
  if ((h.type == kCmdRead || h.type == kCmdWrite) && h.length >= kLargeRequest) return true;
  ssize_t n = recv(fd_.get(), rbuf_.get(), read_exactly_ ? kRequestHeaderSize : kReadBufferSize,
                   MSG_DONTWAIT);
  if (n > 0) {
    rpos_ = 0;
    rlen_ = static_cast<size_t>(n);
    return true;
  }
  // End of stream or an error: the next reader finds it and stops.
  return n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

NbdConnection::Action NbdConnection::ReadRequest(RequestHeader* hp, uint8_t** payload,
                                                 size_t* capacity, int* err, const char** why) {
  RequestHeader& h = *hp;
  uint8_t raw[kRequestHeaderSize];
  if (Status s = ReadExact(raw, sizeof raw); !s.ok()) {
    if (s.code() == EAGAIN || s.code() == EWOULDBLOCK)
      LOG_WARN(name_, "idle for %d s; closing", opts_.idle_timeout_s);
    else if (s.code() != ECONNRESET)
      LOG_WARN(name_, "%s", s.message().c_str());
    else
      LOG_DEBUG(name_, "client closed the connection");
    return Action::kStop;
  }
  h = DecodeRequestHeader(raw);
  read_exactly_ = h.type == kCmdWrite && h.length >= kDirectReceiveMin;
  if (h.magic != kRequestMagic) {
    LOG_WARN(name_, "bad request magic 0x%08x; closing", h.magic);
    return Action::kStop;
  }
  if (h.type == kCmdDisc) {
    LOG_DEBUG(name_, "client sent NBD_CMD_DISC");
    client_disconnected_ = true;
    return Action::kStop;
  }
  *err = Validate(h, why);
  if (h.type == kCmdWrite) {
    if (h.length > max_payload_) {
      LOG_WARN(name_, "write of %u bytes exceeds the %u byte maximum payload; closing", h.length,
               max_payload_);
      return Action::kStop;
    }
    if (*err) {
      if (!Discard(h.length).ok()) return Action::kStop;
      WaitForRoom(0);  // a refusal holds a slot too, until it is sent
      return Action::kReplyError;
    }
    WaitForRoom(h.length);
    *payload = buffers_.Get(h.length, capacity);
    if (Status s = ReadExact(*payload, h.length, /*own_slots=*/1); !s.ok()) {
      buffers_.Put(*payload, *capacity);
      LOG_WARN(name_, "write payload: %s", s.message().c_str());
      // Room was reserved: give it back.
      MutexLock l(&mu_);
      inflight_bytes_ -= h.length;
      inflight_count_--;
      cv_.notify_all();
      return Action::kStop;
    }
    return Action::kSubmit;
  }
  // Refusals hold a slot until sent, like any request: a client that
  // sends junk and never reads the answers is slowed down the same way.
  WaitForRoom(!*err && h.type == kCmdRead ? h.length : 0);
  if (*err) return Action::kReplyError;
  if (h.type == kCmdBlockStatus && !(caps_ & NBDR_CAP_EXTENTS)) return Action::kReplyExtents;
  return Action::kSubmit;
}

void NbdConnection::WaitForRoom(uint64_t bytes) {
  auto room = [&]() REQUIRES(mu_) {
    return inflight_count_ == 0 || (inflight_bytes_ + bytes <= opts_.max_inflight_bytes &&
                                    inflight_count_ < kMaxInflightRequests);
  };
  if (t_holds_replies) {
    // Replies this reader holds keep their slots until sent: send them
    // (under read_mu_; only readers waiting for the turn wait meanwhile)
    // rather than wait for room they would give back.
    bool must_wait;
    {
      MutexLock l(&mu_);
      must_wait = !room();
    }
    if (must_wait) SendHeldReplies();
  }
  MutexLock l(&mu_);
  l.Wait(&cv_, room);
  inflight_count_++;
  inflight_bytes_ += bytes;
}

bool NbdConnection::InFlightBesides(uint64_t own_slots) {
  MutexLock l(&mu_);
  return inflight_count_ > own_slots;
}

void NbdConnection::WaitForDrain() {
  MutexLock l(&mu_);
  l.Wait(&cv_, [&] { return inflight_count_ == 0; });
}

void NbdConnection::SubmitRequest(const RequestHeader& h, uint8_t* payload, size_t capacity) {
  auto* ir = new InflightRequest();
  ir->conn = this;
  ir->cookie = h.cookie;
  ir->command = h.type;
  ir->requested_length = h.length;
  ir->accounted_bytes = (h.type == kCmdRead || h.type == kCmdWrite) ? h.length : 0;
  ir->offset = h.offset;
  ir->length = h.length;
  ir->complete = &NbdConnection::OnComplete;
  ir->flags = 0;
  if (h.flags & kCmdFlagFua) ir->flags |= NBDR_REQ_FLAG_FUA;
  if (h.flags & kCmdFlagNoHole) ir->flags |= NBDR_REQ_FLAG_NO_HOLE;
  if (h.flags & kCmdFlagFastZero) ir->flags |= NBDR_REQ_FLAG_FAST_ZERO;
  switch (h.type) {
    case kCmdRead:
      ir->type = NBDR_REQ_READ;
      ir->data = buffers_.Get(h.length, &ir->data_capacity);
      ir->buf = ir->data;
      break;
    case kCmdWrite:
      ir->type = NBDR_REQ_WRITE;
      ir->data = payload;
      ir->data_capacity = capacity;
      ir->buf = ir->data;
      break;
    case kCmdFlush:
      ir->type = NBDR_REQ_FLUSH;
      ir->offset = 0;
      ir->length = 0;
      break;
    case kCmdTrim:
      ir->type = NBDR_REQ_TRIM;
      break;
    case kCmdWriteZeroes:
      ir->type = NBDR_REQ_WRITE_ZEROES;
      break;
    case kCmdCache:
      ir->type = NBDR_REQ_CACHE;
      break;
    case kCmdBlockStatus:
      ir->type = NBDR_REQ_EXTENTS;
      ir->extent_buf.resize((h.flags & kCmdFlagReqOne) ? 1 : kMaxExtentsPerReply);
      ir->extents = ir->extent_buf.data();
      ir->max_extents = static_cast<uint32_t>(ir->extent_buf.size());
      break;
  }
  export_->handler().desc().submit(export_->handle(), ir);
}

void NbdConnection::OnComplete(nbdr_request* req, int error) {
  auto* ir = static_cast<InflightRequest*>(req);
  ir->conn->Finish(ir, error);
}

void NbdConnection::Finish(InflightRequest* ir, int error) {
  if (error < 0) error = -error;  // tolerate handlers that pass -errno
  if (error) {
    LOG_DEBUG(name_, "%s at %llu+%llu failed: %s", CommandName(ir->command),
              static_cast<unsigned long long>(ir->offset),
              static_cast<unsigned long long>(ir->requested_length), strerror(error));
  }
  BuildReply(ir, error);
  QueueReply(ir);
}

void NbdConnection::ReplyError(const RequestHeader& h, int err, const char* why) {
  LOG_DEBUG(name_, "%s (0x%x) at %llu+%u refused: %s", CommandName(h.type), h.flags,
            static_cast<unsigned long long>(h.offset), h.length, why);
  auto* ir = new InflightRequest();
  ir->cookie = h.cookie;
  ir->command = h.type;
  ir->offset = h.offset;
  BuildReply(ir, err);
  QueueReply(ir);
}

void NbdConnection::ReplyExtentsWithoutHandler(const RequestHeader& h) {
  auto* ir = new InflightRequest();
  ir->cookie = h.cookie;
  ir->command = kCmdBlockStatus;
  ir->offset = h.offset;
  ir->requested_length = h.length;
  ir->extent_buf.push_back(nbdr_extent{h.length, 0, 0});
  ir->extents = ir->extent_buf.data();
  ir->nr_extents = ir->max_extents = 1;
  BuildReply(ir, 0);
  QueueReply(ir);
}

void NbdConnection::BuildReply(InflightRequest* ir, int error) {
  uint8_t* hdr = ir->reply_hdr;
  const uint16_t type = ir->command;
  if (type == kCmdBlockStatus && !error) {
    // Clip to the request and to the export; never send a zero length.
    uint32_t nr = std::min(ir->nr_extents, ir->max_extents);
    uint64_t total = 0, remaining_export = size_ - std::min(size_, ir->offset);
    uint64_t limit = std::min(ir->requested_length, remaining_export);
    ir->descriptors.reserve(8 * static_cast<size_t>(nr));
    for (uint32_t i = 0; i < nr && total < limit; i++) {
      uint64_t l = std::min(ir->extents[i].length, limit - total);
      if (l == 0) continue;
      uint8_t d[8];
      Put32(d, static_cast<uint32_t>(l));
      Put32(d + 4, ir->extents[i].flags & (kStateHole | kStateZero));
      ir->descriptors.insert(ir->descriptors.end(), d, d + 8);
      total += l;
    }
    if (ir->descriptors.empty()) error = EIO;
  }
  uint32_t nbd_error = ErrnoToNbd(error);
  if (error && nbd_error == 0) nbd_error = kEIO;

  if (structured_ && error) {
    // A static string (strerror's may live in a per-thread buffer that
    // another call on this thread frees before the reply is sent).
    const char* msg = strerrordesc_np(error);
    if (!msg) msg = "Unknown error";
    size_t mlen = strlen(msg);
    EncodeStructuredReplyHeader(hdr, kReplyFlagDone, kReplyError, ir->cookie,
                                static_cast<uint32_t>(6 + mlen));
    Put32(hdr + 20, nbd_error);
    Put16(hdr + 24, static_cast<uint16_t>(mlen));
    ir->reply_hdr_len = 26;
    ir->reply_data = msg;
    ir->reply_data_len = mlen;
  } else if (structured_ && type == kCmdRead) {
    EncodeStructuredReplyHeader(hdr, kReplyFlagDone, kReplyOffsetData, ir->cookie,
                                static_cast<uint32_t>(8 + ir->requested_length));
    Put64(hdr + 20, ir->offset);
    ir->reply_hdr_len = 28;
    ir->reply_data = ir->buf;
    ir->reply_data_len = ir->requested_length;
  } else if (type == kCmdBlockStatus && !error) {
    EncodeStructuredReplyHeader(hdr, kReplyFlagDone, kReplyBlockStatus, ir->cookie,
                                static_cast<uint32_t>(4 + ir->descriptors.size()));
    Put32(hdr + 20, kBaseAllocationId);
    ir->reply_hdr_len = 24;
    ir->reply_data = ir->descriptors.data();
    ir->reply_data_len = ir->descriptors.size();
  } else {
    EncodeSimpleReply(hdr, nbd_error, ir->cookie);
    ir->reply_hdr_len = kSimpleReplySize;
    if (type == kCmdRead && !error) {
      ir->reply_data = ir->buf;
      ir->reply_data_len = ir->requested_length;
    }
  }
}

// Replies are combined: the thread that queues a reply while no one is
// sending becomes the sender and writes everything queued, in batches of
// one sendmsg, until the queue is empty; threads that queue meanwhile
// return at once, and a burst of completions costs one system call
// instead of one each. A sender that is not one of this connection's own
// threads (a backend's completion thread, shared with other connections)
// never waits for the socket: when the client does not take its replies
// fast enough, it hands what is left to this connection's flusher thread
// and goes back to its backend.
void NbdConnection::QueueReply(InflightRequest* ir) {
  {
    MutexLock l(&send_mu_);
    send_queue_.push_back(ir);
    if (t_connection == this) t_answered_inline = true;  // (the flusher never queues)
    if (sending_) return;  // the sender writes it
    if (t_may_hold_reply && t_connection == this) {
      // The reader sends it with the next request's reply (see ReaderLoop).
      if (send_queue_.size() < kMaxHeldReplies) {
        t_holds_replies = true;
        return;
      }
      t_batch_full = true;
      t_holds_replies = false;  // all go out now
    }
    sending_ = true;
  }
  SendQueued(/*may_block=*/t_connection == this);
}

void NbdConnection::SendQueued(bool may_block) {
  uint64_t done_count = 0, done_bytes = 0;
  for (;;) {
    {
      MutexLock l(&send_mu_);
      unsent_.insert(unsent_.end(), send_queue_.begin(), send_queue_.end());
      send_queue_.clear();
      if (unsent_.empty()) {
        sending_ = false;
        break;
      }
    }
    size_t written = 0;
    const bool all_written = WriteUnsent(may_block, &written);
    for (size_t i = 0; i < written; i++) {
      InflightRequest* r = unsent_[i];
      done_count++;
      done_bytes += r->accounted_bytes;
      buffers_.Put(r->data, r->data_capacity);
      delete r;
    }
    unsent_.erase(unsent_.begin(), unsent_.begin() + static_cast<ptrdiff_t>(written));
    // Give the slots back as replies go out, but keep one: holding it keeps
    // the connection alive while this thread still uses it.
    if (done_count > 1) {
      ReleaseSlots(done_count - 1, done_bytes);
      done_count = 1;
      done_bytes = 0;
    }
    if (!all_written) {
      MutexLock l(&send_mu_);
      flusher_wanted_ = true;  // the flusher takes the sender's token over
      flusher_cv_.notify_one();
      break;
    }
  }
  // The last time this thread touches the connection.
  if (done_count) ReleaseSlots(done_count, done_bytes);
}

void NbdConnection::ReleaseSlots(uint64_t count, uint64_t bytes) {
  MutexLock l(&mu_);
  inflight_count_ -= count;
  inflight_bytes_ -= bytes;
  cv_.notify_all();  // under the lock: Run() may destroy us once it sees zero
}

void NbdConnection::FlusherLoop() {
  t_connection = this;
  for (;;) {
    {
      MutexLock l(&send_mu_);
      l.Wait(&flusher_cv_, [this] { return flusher_wanted_ || flusher_stop_; });
      if (!flusher_wanted_) break;
      flusher_wanted_ = false;
    }
    SendQueued(/*may_block=*/true);
  }
  t_connection = nullptr;
}

void NbdConnection::StopFlusher() {
  if (!flusher_.joinable()) return;
  {
    MutexLock l(&send_mu_);
    flusher_stop_ = true;
    flusher_cv_.notify_one();
  }
  flusher_.join();
}

namespace {
size_t ReplyLength(const InflightRequest* r) { return r->reply_hdr_len + r->reply_data_len; }
}  // namespace

bool NbdConnection::WriteUnsent(bool may_block, size_t* written) {
  constexpr size_t kMaxIov = 1024;  // IOV_MAX on Linux
  std::vector<iovec> iov;
  iov.reserve(std::min(kMaxIov, 2 * unsent_.size()));
  size_t first = 0;  // unsent_[first] is the first reply not yet fully written
  bool all_written = true;
  while (first < unsent_.size()) {
    if (send_broken_) {  // the connection is going away: drop the rest
      first = unsent_.size();
      unsent_offset_ = 0;
      break;
    }
    iov.clear();
    size_t skip = unsent_offset_;
    size_t end = first;
    for (; end < unsent_.size() && iov.size() + 2 <= kMaxIov; end++) {
      InflightRequest* r = unsent_[end];
      const iovec parts[2] = {{r->reply_hdr, r->reply_hdr_len},
                              {const_cast<void*>(r->reply_data), r->reply_data_len}};
      for (const iovec& part : parts) {
        if (skip >= part.iov_len) {
          skip -= part.iov_len;
          continue;
        }
        iov.push_back({static_cast<uint8_t*>(part.iov_base) + skip, part.iov_len - skip});
        skip = 0;
      }
    }
    msghdr msg{};
    msg.msg_iov = iov.data();
    msg.msg_iovlen = iov.size();
    ssize_t w = sendmsg(fd_.get(), &msg, MSG_NOSIGNAL | (may_block ? 0 : MSG_DONTWAIT));
    if (w < 0) {
      if (errno == EINTR) continue;
      if (!may_block && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        all_written = false;
        break;
      }
      LOG_WARN(name_, "send reply: %s; dropping the connection", strerror(errno));
      send_broken_ = true;
      shutdown(fd_.get(), SHUT_RDWR);
      continue;
    }
    size_t advance = unsent_offset_ + static_cast<size_t>(w);
    while (first < end && advance >= ReplyLength(unsent_[first])) {
      advance -= ReplyLength(unsent_[first]);
      first++;
    }
    unsent_offset_ = advance;
  }
  *written = first;
  return all_written;
}

void NbdConnection::SendIov(iovec* iov, int n) {
  if (send_broken_) return;
  while (n > 0) {
    msghdr msg{};
    msg.msg_iov = iov;
    msg.msg_iovlen = static_cast<size_t>(n);
    ssize_t w = sendmsg(fd_.get(), &msg, MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EINTR) continue;
      LOG_WARN(name_, "send reply: %s; dropping the connection", strerror(errno));
      send_broken_ = true;
      shutdown(fd_.get(), SHUT_RDWR);
      return;
    }
    size_t done = static_cast<size_t>(w);
    while (n > 0 && done >= iov->iov_len) {
      done -= iov->iov_len;
      iov++;
      n--;
    }
    if (n > 0) {
      iov->iov_base = static_cast<uint8_t*>(iov->iov_base) + done;
      iov->iov_len -= done;
    }
  }
}

}  // namespace nbdr
