// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// NBD wire codec; see nbd_protocol.h.
#include "utils/nbd_protocol.h"

#include <algorithm>
#include <cerrno>

namespace nbdr::nbd {

uint32_t ErrnoToNbd(int err) {
  switch (err) {
    case 0: return 0;
    case EPERM:
    case EROFS:
    case EACCES: return kEPERM;
    case ENOMEM: return kENOMEM;
    case EINVAL: return kEINVAL;
    case ENOSPC:
    case EDQUOT:
    case EFBIG: return kENOSPC;
    case EOVERFLOW: return kEOVERFLOW;
    case ENOTSUP: return kENOTSUP;
    case ESHUTDOWN: return kESHUTDOWN;
    default: return kEIO;
  }
}

const char* CommandName(uint16_t type) {
  switch (type) {
    case kCmdRead: return "READ";
    case kCmdWrite: return "WRITE";
    case kCmdDisc: return "DISC";
    case kCmdFlush: return "FLUSH";
    case kCmdTrim: return "TRIM";
    case kCmdCache: return "CACHE";
    case kCmdWriteZeroes: return "WRITE_ZEROES";
    case kCmdBlockStatus: return "BLOCK_STATUS";
    default: return "UNKNOWN";
  }
}

std::string OptionName(uint32_t option) {
  switch (option) {
    case kOptExportName: return "NBD_OPT_EXPORT_NAME";
    case kOptAbort: return "NBD_OPT_ABORT";
    case kOptList: return "NBD_OPT_LIST";
    case kOptStartTls: return "NBD_OPT_STARTTLS";
    case kOptInfo: return "NBD_OPT_INFO";
    case kOptGo: return "NBD_OPT_GO";
    case kOptStructuredReply: return "NBD_OPT_STRUCTURED_REPLY";
    case kOptListMetaContext: return "NBD_OPT_LIST_META_CONTEXT";
    case kOptSetMetaContext: return "NBD_OPT_SET_META_CONTEXT";
    default: return "NBD_OPT_" + std::to_string(option);
  }
}

std::string OptionReplyName(uint32_t type) {
  switch (type) {
    case kRepErrUnsup: return "NBD_REP_ERR_UNSUP";
    case kRepErrPolicy: return "NBD_REP_ERR_POLICY";
    case kRepErrInvalid: return "NBD_REP_ERR_INVALID";
    case kRepErrPlatform: return "NBD_REP_ERR_PLATFORM";
    case kRepErrTlsReqd: return "NBD_REP_ERR_TLS_REQD";
    case kRepErrUnknown: return "NBD_REP_ERR_UNKNOWN";
    case kRepErrShutdown: return "NBD_REP_ERR_SHUTDOWN";
    case kRepErrBlockSizeReqd: return "NBD_REP_ERR_BLOCK_SIZE_REQD";
    case kRepErrTooBig: return "NBD_REP_ERR_TOO_BIG";
    default: return "NBD_REP_" + std::to_string(type);
  }
}

std::string TransmissionFlagNames(uint16_t flags) {
  static const struct {
    uint16_t bit;
    const char* name;
  } kNames[] = {{kFlagReadOnly, "read-only"},         {kFlagSendFlush, "flush"},
                {kFlagSendFua, "fua"},                {kFlagRotational, "rotational"},
                {kFlagSendTrim, "trim"},              {kFlagSendWriteZeroes, "write-zeroes"},
                {kFlagSendDf, "df"},                  {kFlagCanMultiConn, "multi-conn"},
                {kFlagSendCache, "cache"},            {kFlagSendFastZero, "fast-zero"}};
  std::string out;
  for (const auto& n : kNames) {
    if (!(flags & n.bit)) continue;
    if (!out.empty()) out += ' ';
    out += n.name;
  }
  return out.empty() ? "none" : out;
}

RequestHeader DecodeRequestHeader(const uint8_t p[kRequestHeaderSize]) {
  return RequestHeader{Get32(p), Get16(p + 4), Get16(p + 6), Get64(p + 8), Get64(p + 16),
                       Get32(p + 24)};
}

void EncodeRequestHeader(const RequestHeader& h, uint8_t p[kRequestHeaderSize]) {
  Put32(p, h.magic);
  Put16(p + 4, h.flags);
  Put16(p + 6, h.type);
  Put64(p + 8, h.cookie);
  Put64(p + 16, h.offset);
  Put32(p + 24, h.length);
}

void EncodeSimpleReply(uint8_t p[kSimpleReplySize], uint32_t error, uint64_t cookie) {
  Put32(p, kSimpleReplyMagic);
  Put32(p + 4, error);
  Put64(p + 8, cookie);
}

void EncodeStructuredReplyHeader(uint8_t p[kStructuredReplyHeaderSize], uint16_t flags,
                                 uint16_t type, uint64_t cookie, uint32_t length) {
  Put32(p, kStructuredReplyMagic);
  Put16(p + 4, flags);
  Put16(p + 6, type);
  Put64(p + 8, cookie);
  Put32(p + 16, length);
}

size_t EncodeErrorChunk(uint8_t p[kMaxReplyHeaderSize], uint64_t cookie, uint32_t error,
                        uint16_t message_len) {
  EncodeStructuredReplyHeader(p, kReplyFlagDone, kReplyError, cookie, 6u + message_len);
  Put32(p + 20, error);
  Put16(p + 24, message_len);
  return 26;
}

size_t EncodeOffsetDataChunk(uint8_t p[kMaxReplyHeaderSize], uint64_t cookie, uint64_t offset,
                             uint64_t data_len) {
  EncodeStructuredReplyHeader(p, kReplyFlagDone, kReplyOffsetData, cookie,
                              static_cast<uint32_t>(8 + data_len));
  Put64(p + 20, offset);
  return 28;
}

size_t EncodeBlockStatusChunk(uint8_t p[kMaxReplyHeaderSize], uint64_t cookie,
                              uint32_t context_id, size_t descriptors_len) {
  EncodeStructuredReplyHeader(p, kReplyFlagDone, kReplyBlockStatus, cookie,
                              static_cast<uint32_t>(4 + descriptors_len));
  Put32(p + 20, context_id);
  return 24;
}

void EncodeBlockDescriptor(uint8_t p[kBlockDescriptorSize], uint32_t length, uint32_t flags) {
  Put32(p, length);
  Put32(p + 4, flags);
}

void EncodeGreeting(uint8_t p[kGreetingSize], uint16_t handshake_flags) {
  Put64(p, kNbdMagic);
  Put64(p + 8, kIHaveOpt);
  Put16(p + 16, handshake_flags);
}

bool DecodeGreeting(const uint8_t p[kGreetingSize], uint16_t* handshake_flags) {
  if (Get64(p) != kNbdMagic || Get64(p + 8) != kIHaveOpt) return false;
  *handshake_flags = Get16(p + 16);
  return (*handshake_flags & kFlagFixedNewstyle) != 0;
}

void EncodeOptionHeader(uint8_t p[kOptionHeaderSize], uint32_t option, uint32_t length) {
  Put64(p, kIHaveOpt);
  Put32(p + 8, option);
  Put32(p + 12, length);
}

OptionHeader DecodeOptionHeader(const uint8_t p[kOptionHeaderSize]) {
  return OptionHeader{Get64(p), Get32(p + 8), Get32(p + 12)};
}

void EncodeOptionReplyHeader(uint8_t p[kOptionReplyHeaderSize], uint32_t option, uint32_t type,
                             uint32_t length) {
  Put64(p, kOptReplyMagic);
  Put32(p + 8, option);
  Put32(p + 12, type);
  Put32(p + 16, length);
}

OptionReplyHeader DecodeOptionReplyHeader(const uint8_t p[kOptionReplyHeaderSize]) {
  return OptionReplyHeader{Get64(p), Get32(p + 8), Get32(p + 12), Get32(p + 16)};
}

std::vector<uint8_t> EncodeExportNameReply(uint64_t size, uint16_t transmission_flags,
                                           bool no_zeroes) {
  std::vector<uint8_t> out(kExportNameReplySize + (no_zeroes ? 0 : kExportNameReplyZeroes));
  Put64(out.data(), size);
  Put16(out.data() + 8, transmission_flags);
  return out;
}

std::vector<uint8_t> EncodeInfoRequest(const InfoRequest& r) {
  std::vector<uint8_t> out(4 + r.name.size() + 2 + 2 * r.infos.size());
  Put32(out.data(), static_cast<uint32_t>(r.name.size()));
  std::copy(r.name.begin(), r.name.end(), out.begin() + 4);
  uint8_t* p = out.data() + 4 + r.name.size();
  Put16(p, static_cast<uint16_t>(r.infos.size()));
  for (size_t i = 0; i < r.infos.size(); i++) Put16(p + 2 + 2 * i, r.infos[i]);
  return out;
}

bool DecodeInfoRequest(std::string_view data, InfoRequest* out, OptionError* err) {
  const auto* p = reinterpret_cast<const uint8_t*>(data.data());
  auto invalid = [&](const char* why) {
    *err = OptionError{kRepErrInvalid, why};
    return false;
  };
  if (data.size() < 6) return invalid("option too short");
  uint32_t name_len = Get32(p);
  if (name_len > data.size() - 6) return invalid("export name length exceeds option length");
  uint16_t nreq = Get16(p + 4 + name_len);
  if (data.size() != 6 + name_len + 2ull * nreq)
    return invalid("information request count does not match length");
  out->name = std::string(data.substr(4, name_len));
  out->infos.clear();
  for (uint16_t i = 0; i < nreq; i++) out->infos.push_back(Get16(p + 6 + name_len + 2 * i));
  return true;
}

std::vector<uint8_t> EncodeMetaContextRequest(const MetaContextRequest& r) {
  std::string out(4, '\0');
  Put32(reinterpret_cast<uint8_t*>(out.data()), static_cast<uint32_t>(r.name.size()));
  out += r.name;
  out.resize(out.size() + 4);
  Put32(reinterpret_cast<uint8_t*>(out.data()) + out.size() - 4,
        static_cast<uint32_t>(r.queries.size()));
  for (const auto& q : r.queries) {
    out.resize(out.size() + 4);
    Put32(reinterpret_cast<uint8_t*>(out.data()) + out.size() - 4, static_cast<uint32_t>(q.size()));
    out += q;
  }
  return std::vector<uint8_t>(out.begin(), out.end());
}

bool DecodeMetaContextRequest(std::string_view data, size_t max_query, MetaContextRequest* out,
                              OptionError* err) {
  const auto* p = reinterpret_cast<const uint8_t*>(data.data());
  const size_t len = data.size();
  auto refuse = [&](uint32_t type, std::string why) {
    *err = OptionError{type, std::move(why)};
    return false;
  };
  if (len < 8) return refuse(kRepErrInvalid, "option too short");
  uint32_t name_len = Get32(p);
  if (name_len > len - 8) return refuse(kRepErrInvalid, "export name length exceeds option length");
  out->name = std::string(data.substr(4, name_len));
  out->queries.clear();
  uint32_t nqueries = Get32(p + 4 + name_len);
  size_t pos = 8 + name_len;
  for (uint32_t i = 0; i < nqueries; i++) {
    if (len - pos < 4) return refuse(kRepErrInvalid, "query count exceeds option length");
    uint32_t qlen = Get32(p + pos);
    pos += 4;
    if (qlen > len - pos) return refuse(kRepErrInvalid, "query length exceeds option length");
    if (qlen > max_query)
      return refuse(kRepErrTooBig, "query longer than " + std::to_string(max_query) + " bytes");
    out->queries.emplace_back(data.substr(pos, qlen));
    pos += qlen;
  }
  if (pos != len) return refuse(kRepErrInvalid, "trailing bytes after the queries");
  return true;
}

namespace {
// A payload that starts with a big-endian 16 or 32-bit field.
std::string With16(uint16_t v, std::string_view rest) {
  std::string out(2, '\0');
  Put16(reinterpret_cast<uint8_t*>(out.data()), v);
  return out.append(rest);
}
std::string With32(uint32_t v, std::string_view rest) {
  std::string out(4, '\0');
  Put32(reinterpret_cast<uint8_t*>(out.data()), v);
  return out.append(rest);
}
}  // namespace

std::string EncodeServerReply(std::string_view export_name) {
  return With32(static_cast<uint32_t>(export_name.size()), export_name);
}

std::string EncodeMetaContextReply(uint32_t id, std::string_view context) {
  return With32(id, context);
}

std::string EncodeInfoExport(uint64_t size, uint16_t transmission_flags) {
  uint8_t b[10];
  Put64(b, size);
  Put16(b + 8, transmission_flags);
  return With16(kInfoExport, std::string_view(reinterpret_cast<char*>(b), sizeof b));
}

std::string EncodeInfoText(uint16_t info, std::string_view text) { return With16(info, text); }

std::string EncodeInfoBlockSize(uint32_t min_block, uint32_t preferred_block,
                                uint32_t max_payload) {
  uint8_t b[12];
  Put32(b, min_block);
  Put32(b + 4, preferred_block);
  Put32(b + 8, max_payload);
  return With16(kInfoBlockSize, std::string_view(reinterpret_cast<char*>(b), sizeof b));
}

bool DecodeInfoExport(std::string_view payload, uint64_t* size, uint16_t* transmission_flags) {
  if (payload.size() != 12) return false;
  const auto* p = reinterpret_cast<const uint8_t*>(payload.data());
  *size = Get64(p + 2);
  *transmission_flags = Get16(p + 10);
  return true;
}

bool DecodeInfoBlockSize(std::string_view payload, uint32_t* min_block, uint32_t* preferred_block,
                         uint32_t* max_payload) {
  if (payload.size() != 14) return false;
  const auto* p = reinterpret_cast<const uint8_t*>(payload.data());
  *min_block = Get32(p + 2);
  *preferred_block = Get32(p + 6);
  *max_payload = Get32(p + 10);
  return true;
}

}  // namespace nbdr::nbd
