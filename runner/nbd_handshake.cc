// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// Option negotiation on one NBD connection; see nbd_handshake.h and
// doc/proto.md of the NetworkBlockDevice project.
#include "runner/nbd_handshake.h"

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "utils/log.h"
#include "utils/names.h"

namespace nbdr {

using namespace nbd;

NbdHandshake::NbdHandshake(Transport* transport, NbdServer* server, std::string* log_name)
    : transport_(transport),
      server_(server),
      opts_(server->options()),
      tls_mode_(opts_.tls ? opts_.tls->options().mode : TlsMode::kOff),
      log_name_(log_name),
      base_name_(*log_name) {
  result_.max_payload = opts_.max_payload;
}

std::optional<NbdHandshake::Progress> NbdHandshake::Gather(size_t need) {
  // Only what is needed is received: nothing of the next option (or of a
  // TLS handshake after STARTTLS) is taken early.
  while (in_.size() < need) {
    if (std::chrono::steady_clock::now() > deadline_) {
      LOG_WARN(*log_name_, "handshake not finished within %d s; closing",
               opts_.handshake_timeout_s);
      return Progress::kEnded;
    }
    if (!ClientSpeaks()) return Progress::kParked;
    // A client that writes an option in pieces under Nagle waits for our
    // ACK between them (qemu's, 40 ms a piece without it).
    transport_->AckPromptly();
    const size_t have = in_.size();
    in_.resize(need);
    ssize_t n = transport_->Recv(in_.data() + have, need - have, Transport::Wait::kNoWait);
    in_.resize(have + static_cast<size_t>(std::max<ssize_t>(n, 0)));
    if (n == 0) {
      LOG_DEBUG(*log_name_, "client left during handshake");
      return Progress::kEnded;
    }
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
      LOG_DEBUG(*log_name_, "client left during handshake: %s", strerror(errno));
      return Progress::kEnded;
    }
  }
  return std::nullopt;
}

Status NbdHandshake::SendOptionReply(uint32_t option, uint32_t type, std::string_view data) {
  if (send_broken_) return Status::Error(EPIPE, "send: connection broken");
  uint8_t hdr[kOptionReplyHeaderSize];
  EncodeOptionReplyHeader(hdr, option, type, static_cast<uint32_t>(data.size()));
  iovec iov[2] = {{hdr, sizeof hdr}, {const_cast<char*>(data.data()), data.size()}};
  if (Status s = transport_->SendAll(iov, data.empty() ? 1 : 2, deadline_); !s.ok()) {
    LOG_WARN(*log_name_, "send reply: %s; dropping the connection", strerror(s.code()));
    send_broken_ = true;
    transport_->ShutdownBoth();
    return Status::Error(EPIPE, "send: connection broken");
  }
  return Status();
}

Status NbdHandshake::SendOptionError(uint32_t option, uint32_t type, const std::string& message) {
  LOG_DEBUG(*log_name_, "%s refused (%s): %s", OptionName(option).c_str(),
            OptionReplyName(type).c_str(), message.c_str());
  return SendOptionReply(option, type, std::string_view(message).substr(0, kMaxNameLength));
}

void NbdHandshake::NameConnection(const std::string& export_name) {
  *log_name_ = base_name_ + " " + export_name;
}

void NbdHandshake::LogExportGiven(uint32_t option, bool base_allocation) const {
  const NegotiatedExport& e = result_;
  LOG_DEBUG(*log_name_, "%s: size %llu, flags %s, block sizes %u/%u/%u, %s replies%s",
            OptionName(option).c_str(), static_cast<unsigned long long>(e.size),
            TransmissionFlagNames(e.TransmissionFlags()).c_str(), e.min_block, e.preferred_block,
            e.max_payload, e.structured ? "structured" : "simple",
            base_allocation ? ", base:allocation" : "");
}

bool NbdHandshake::OpenExport(const std::string& name, OptionError* err) {
  err->type = kRepErrUnknown;
  if (server_->stopping()) {
    *err = OptionError{kRepErrShutdown, "server is shutting down"};
    return false;
  }
  if (!IsValidUtf8(name) || name.find('\0') != std::string::npos) {
    *err = OptionError{kRepErrInvalid, "export name is not valid UTF-8"};
    return false;
  }
  auto parsed = ParseExportName(name);
  if (!parsed) {
    err->message = parsed.status().message();
    return false;
  }
  // The backend's time to open (a slow cluster) is not the client's: the
  // deadline moves by it, up to the allowance, and once per export (an
  // INFO closes what it opened: INFO after INFO of one export must not
  // stretch the deadline open by open).
  auto open_started = std::chrono::steady_clock::now();
  auto exp = server_->registry()->OpenForServing(name, transport_->tls_identity());
  if (opened_.insert(std::hash<std::string>{}(name)).second) {
    auto credit = std::min(open_allowance_, std::chrono::steady_clock::now() - open_started);
    deadline_ += credit;
    open_allowance_ -= credit;
    if (credit >= std::chrono::seconds(1))
      LOG_INFO(*log_name_, "opening %s took %.1f s: the handshake deadline moves by that",
               name.c_str(), std::chrono::duration<double>(credit).count());
  }
  if (!exp) {
    err->message = exp.status().message();
    // Registered but refused (its object was replaced, or this client is
    // not on its access list): policy, not absent.
    if (exp.status().code() == ESTALE || exp.status().code() == EACCES) err->type = kRepErrPolicy;
    if (exp.status().code() == EACCES) LOG_WARN(*log_name_, "refused: %s", err->message.c_str());
    return false;
  }
  NegotiatedExport& e = result_;
  e.open = *exp;
  e.name = name;
  const nbdr_export_info& info = e.open->info();
  const BackstoreRecord& rec = e.open->record();
  e.size = e.open->size();  // a resize since the open changed it
  e.caps = info.caps;
  e.readonly = rec.readonly;
  e.min_block = info.min_block ? info.min_block : rec.block_size;
  e.handler_min_block = info.min_block ? info.min_block : 1;
  e.preferred_block =
      std::max<uint32_t>(e.min_block, info.preferred_block ? info.preferred_block : 4096);
  e.max_payload = opts_.max_payload;
  if (info.max_payload && info.max_payload < e.max_payload) e.max_payload = info.max_payload;
  // A realigned request (realigned_io.h) grows by up to two blocks.
  if (e.handler_min_block > 1) e.max_payload -= 2 * e.handler_min_block;
  return true;
}

bool NbdHandshake::HandleList(uint32_t option, const std::string& data) {
  if (!data.empty())
    return SendOptionError(option, kRepErrInvalid, "NBD_OPT_LIST takes no data").ok();
  size_t listed = 0;
  const std::string identity = transport_->tls_identity();
  for (const auto& r : server_->registry()->List("")) {
    if (!server_->registry()->MayOpen(r, identity)) continue;  // only what this client may open
    if (!SendOptionReply(option, kRepServer, EncodeServerReply(r.ExportName())).ok()) return false;
    listed++;
  }
  LOG_DEBUG(*log_name_, "NBD_OPT_LIST: %zu export(s) listed", listed);
  return SendOptionReply(option, kRepAck).ok();
}

bool NbdHandshake::HandleInfoOrGo(uint32_t option, const std::string& data,
                                  bool* enter_transmission) {
  *enter_transmission = false;
  InfoRequest req;
  OptionError err;
  if (!DecodeInfoRequest(data, &req, &err)) return SendOptionError(option, err.type, err.message).ok();
  if (std::find(req.infos.begin(), req.infos.end(), kInfoBlockSize) != req.infos.end())
    result_.client_knows_block_size = true;
  if (!OpenExport(req.name, &err)) return SendOptionError(option, err.type, err.message).ok();
  NameConnection(req.name);
  LogExportGiven(option, result_.base_allocation && meta_export_ == req.name);
  if (!SendInfoReplies(option, req)) return false;
  if (option == kOptGo) {
    if (result_.base_allocation && meta_export_ != req.name) result_.base_allocation = false;
    *enter_transmission = true;
  } else {
    result_.open.reset();  // NBD_OPT_INFO: nothing stays open
    CreditListing(req.name);
  }
  return true;
}

void NbdHandshake::CreditListing(const std::string& export_name) {
  // Hashes, not names: a long listing must not cost kilobytes per export.
  if (listed_.insert(std::hash<std::string>{}(export_name)).second) deadline_ += kListingCredit;
}

bool NbdHandshake::SendInfoReplies(uint32_t option, const InfoRequest& req) {
  const NegotiatedExport& e = result_;
  auto wants = [&](uint16_t info) {
    return std::find(req.infos.begin(), req.infos.end(), info) != req.infos.end();
  };
  if (!SendOptionReply(option, kRepInfo, EncodeInfoExport(e.size, e.TransmissionFlags())).ok())
    return false;
  if (wants(kInfoName) &&
      !SendOptionReply(option, kRepInfo, EncodeInfoText(kInfoName, req.name)).ok())
    return false;
  if (wants(kInfoDescription)) {
    const BackstoreRecord& rec = e.open->record();
    std::string text = rec.type + " backstore " + rec.key + (rec.readonly ? " (read-only)" : "");
    if (!SendOptionReply(option, kRepInfo, EncodeInfoText(kInfoDescription, text)).ok())
      return false;
  }
  // A client that did not ask is told the alignment it really needs.
  std::string bs = EncodeInfoBlockSize(RequiredAlignment(e), e.preferred_block, e.max_payload);
  if (!SendOptionReply(option, kRepInfo, bs).ok()) return false;
  return SendOptionReply(option, kRepAck).ok();
}

bool NbdHandshake::HandleMetaContext(uint32_t option, const std::string& data) {
  const bool set = option == kOptSetMetaContext;
  if (set && !result_.structured)
    return SendOptionError(option, kRepErrInvalid, "negotiate structured replies first").ok();
  MetaContextRequest req;
  OptionError err;
  if (!DecodeMetaContextRequest(data, kMaxNameLength, &req, &err))
    return SendOptionError(option, err.type, err.message).ok();
  auto parsed = ParseExportName(req.name);
  auto record = parsed ? server_->registry()->ServedRecord(req.name)
                       : Expected<BackstoreRecord>(parsed.status());
  if (!record)
    return SendOptionError(option, kRepErrUnknown, "no backstore " + req.name + " on this runner")
        .ok();
  if (!server_->registry()->MayOpen(*record, transport_->tls_identity()))
    return SendOptionError(option, kRepErrPolicy, "this client may not open " + req.name).ok();

  bool match = !set && req.queries.empty();
  for (const auto& q : req.queries) {
    if (q == kBaseAllocation || (!set && q == "base:")) match = true;
  }
  if (match && !SendOptionReply(option, kRepMetaContext,
                                EncodeMetaContextReply(kBaseAllocationId, kBaseAllocation))
                    .ok())
    return false;
  std::string asked;
  for (const auto& q : req.queries) asked += (asked.empty() ? "" : ", ") + q;
  LOG_DEBUG(*log_name_, "%s %s [%s]: %s", OptionName(option).c_str(), req.name.c_str(),
            asked.c_str(), match ? "base:allocation (context id 1)" : "no context");
  if (set) {
    result_.base_allocation = match;
    meta_export_ = req.name;
  }
  return SendOptionReply(option, kRepAck).ok();
}

bool NbdHandshake::HandleStructuredReply(uint32_t option, const std::string& data) {
  if (!data.empty()) return SendOptionError(option, kRepErrInvalid, "takes no data").ok();
  if (result_.structured)
    return SendOptionError(option, kRepErrInvalid, "already negotiated").ok();
  result_.structured = true;
  LOG_DEBUG(*log_name_, "NBD_OPT_STRUCTURED_REPLY: structured replies on");
  return SendOptionReply(option, kRepAck).ok();
}

bool NbdHandshake::HandleExportName(const std::string& name) {
  OptionError err;
  if (!OpenExport(name, &err)) {
    LOG_INFO(*log_name_, "NBD_OPT_EXPORT_NAME refused: %s", err.message.c_str());
    return false;  // this option has no error path: hang up
  }
  NameConnection(name);
  LogExportGiven(kOptExportName, result_.base_allocation && meta_export_ == name);
  auto reply = EncodeExportNameReply(result_.size, result_.TransmissionFlags(), no_zeroes_);
  if (!transport_->SendAll(reply.data(), reply.size(), deadline_).ok()) return false;
  if (result_.base_allocation && meta_export_ != name) result_.base_allocation = false;
  return true;
}

bool NbdHandshake::HandleStartTls(uint32_t option, const std::string& data) {
  if (tls_mode_ == TlsMode::kOff)
    return SendOptionError(option, kRepErrUnsup, "TLS is not enabled on this runner").ok();
  if (!data.empty()) return SendOptionError(option, kRepErrInvalid, "takes no data").ok();
  if (transport_->tls())
    return SendOptionError(option, kRepErrInvalid, "TLS is already negotiated").ok();
  if (!SendOptionReply(option, kRepAck).ok()) return false;
  tls_handshake_ = TlsHandshake::kToStart;
  return true;
}

std::optional<NbdHandshake::Progress> NbdHandshake::RunTlsHandshake() {
  const auto park = std::chrono::milliseconds(opts_.handshake_park_ms);
  Status s = tls_handshake_ == TlsHandshake::kToStart
                 ? transport_->StartTls(server_->tls(), deadline_, park)
                 : transport_->ContinueTls(deadline_, park);
  tls_handshake_ = TlsHandshake::kRunning;
  if (s.code() == EAGAIN) return Progress::kParked;
  tls_handshake_ = TlsHandshake::kNone;
  if (!s.ok()) {
    LOG_WARN(*log_name_, "%s; closing", s.message().c_str());
    return Progress::kEnded;
  }
  const std::string identity = transport_->tls_identity();
  LOG_INFO(*log_name_, "TLS %s, client %s", transport_->tls_description().c_str(),
           identity.empty() ? "without an identity" : identity.c_str());
  // What was agreed in plain text does not carry over into TLS.
  result_.structured = false;
  result_.base_allocation = false;
  meta_export_.clear();
  return std::nullopt;
}

bool NbdHandshake::RefuseBeforeTls(uint32_t option) {
  if (option == kOptExportName) {
    LOG_WARN(*log_name_, "NBD_OPT_EXPORT_NAME without TLS, which this runner requires; closing");
    return false;
  }
  LOG_INFO(*log_name_, "%s refused: TLS is required first", OptionName(option).c_str());
  return SendOptionError(option, kRepErrTlsReqd,
                         "this runner requires TLS: send NBD_OPT_STARTTLS first")
      .ok();
}

bool NbdHandshake::HandleOption(uint32_t option, const std::string& data, bool* done) {
  *done = false;
  if (tls_mode_ == TlsMode::kRequire && !transport_->tls() && option != kOptStartTls &&
      option != kOptAbort)
    return RefuseBeforeTls(option);
  switch (option) {
    case kOptExportName:
      *done = HandleExportName(data);
      return *done;
    case kOptAbort:
      (void)SendOptionReply(option, kRepAck);
      LOG_DEBUG(*log_name_, "client aborted the handshake");
      return false;
    case kOptList:
      return HandleList(option, data);
    case kOptInfo:
    case kOptGo:
      return HandleInfoOrGo(option, data, done);
    case kOptStructuredReply:
      return HandleStructuredReply(option, data);
    case kOptListMetaContext:
    case kOptSetMetaContext:
      return HandleMetaContext(option, data);
    case kOptStartTls:
      return HandleStartTls(option, data);
    default:
      return SendOptionError(option, kRepErrUnsup,
                             "unsupported option (" + std::to_string(data.size()) +
                                 " bytes of data)")
          .ok();
  }
}

bool NbdHandshake::TakeClientFlags() {
  const uint32_t cflags = Get32(reinterpret_cast<const uint8_t*>(in_.data()));
  in_.clear();
  if (cflags & ~(kClientFlagFixedNewstyle | kClientFlagNoZeroes)) {
    LOG_WARN(*log_name_, "unknown client flags 0x%x; closing", cflags);
    return false;
  }
  if (!(cflags & kClientFlagFixedNewstyle)) {
    LOG_WARN(*log_name_, "client does not speak fixed newstyle; closing");
    return false;
  }
  no_zeroes_ = cflags & kClientFlagNoZeroes;
  LOG_DEBUG(*log_name_, "client flags: fixed-newstyle%s", no_zeroes_ ? " no-zeroes" : "");
  return true;
}

bool NbdHandshake::ClientSpeaks() {
  const auto now = std::chrono::steady_clock::now();
  if (now >= deadline_) return true;
  auto wait = std::chrono::milliseconds(opts_.handshake_park_ms);
  wait = std::min(wait, std::chrono::ceil<std::chrono::milliseconds>(deadline_ - now));
  return transport_->WaitReadable(wait);
}

NbdHandshake::Progress NbdHandshake::Continue() {
  if (!greeted_) {
    deadline_ = std::chrono::steady_clock::now() + std::chrono::seconds(opts_.handshake_timeout_s);
    open_allowance_ = std::chrono::seconds(std::max(opts_.handshake_timeout_s, kMinOpenAllowanceS));
    uint8_t greeting[kGreetingSize];
    EncodeGreeting(greeting, kFlagFixedNewstyle | kFlagNoZeroes);
    if (!transport_->SendAll(greeting, sizeof greeting, deadline_).ok()) return Progress::kEnded;
    greeted_ = true;
  }
  if (!have_flags_) {
    if (auto p = Gather(4)) return *p;
    if (!TakeClientFlags()) return Progress::kEnded;
    have_flags_ = true;
  }
  for (;;) {
    if (tls_handshake_ != TlsHandshake::kNone) {
      if (auto p = RunTlsHandshake()) return *p;
    }
    if (!option_) {
      if (auto p = Gather(kOptionHeaderSize)) return *p;
      option_ = DecodeOptionHeader(reinterpret_cast<const uint8_t*>(in_.data()));
      in_.clear();
      if (!AcceptOptionHeader(*option_)) return Progress::kEnded;
    }
    if (auto p = Gather(option_->length)) return *p;
    const uint32_t option = option_->option;
    const std::string data = std::move(in_);
    in_.clear();
    option_.reset();
    bool done = false;
    if (!HandleOption(option, data, &done)) return Progress::kEnded;
    if (done) return Progress::kTransmission;
  }
}

bool NbdHandshake::AcceptOptionHeader(const OptionHeader& h) {
  if (h.magic != kIHaveOpt) {
    LOG_WARN(*log_name_, "bad option magic; closing");
    return false;
  }
  if (h.length > kMaxOptionLength) {
    LOG_WARN(*log_name_, "%s with %u bytes of data exceeds the %zu byte limit; closing",
             OptionName(h.option).c_str(), h.length, kMaxOptionLength);
    if (h.option != kOptExportName)
      (void)SendOptionError(h.option, kRepErrTooBig, "option data too large");
    return false;
  }
  received_ += kOptionHeaderSize + h.length;
  if (received_ > opts_.max_handshake_bytes) {
    LOG_WARN(*log_name_, "options of more than %llu bytes in one handshake; closing",
             static_cast<unsigned long long>(opts_.max_handshake_bytes));
    return false;
  }
  return true;
}

std::optional<NegotiatedExport> NbdHandshake::Run() {
  for (;;) {
    switch (Continue()) {
      case Progress::kParked: {
        const auto left = deadline_ - std::chrono::steady_clock::now();
        transport_->WaitReadable(std::max(std::chrono::milliseconds(0),
                                          std::chrono::ceil<std::chrono::milliseconds>(left)));
        break;
      }
      case Progress::kEnded: return std::nullopt;
      case Progress::kTransmission: return TakeResult();
    }
  }
}

}  // namespace nbdr
