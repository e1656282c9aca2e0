// NBD wire codec; see nbd_protocol.h.
#include "utils/nbd_protocol.h"

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

}  // namespace nbdr::nbd
