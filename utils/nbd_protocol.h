// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// NBD protocol constants and the wire codec used by the runner (server)
// and nbd-cli (client handshake): request
// headers, simple and structured replies, option replies, errno to NBD
// error mapping. Source: doc/proto.md of the NetworkBlockDevice project.
// Pure functions on byte buffers, thread-safe.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace nbdr::nbd {

// Handshake.
inline constexpr uint64_t kNbdMagic = 0x4e42444d41474943ULL;  // "NBDMAGIC"
inline constexpr uint64_t kIHaveOpt = 0x49484156454F5054ULL;  // "IHAVEOPT"
inline constexpr uint64_t kOptReplyMagic = 0x3e889045565a9ULL;
inline constexpr uint16_t kFlagFixedNewstyle = 1 << 0;
inline constexpr uint16_t kFlagNoZeroes = 1 << 1;
inline constexpr uint32_t kClientFlagFixedNewstyle = 1 << 0;
inline constexpr uint32_t kClientFlagNoZeroes = 1 << 1;

enum Option : uint32_t {
  kOptExportName = 1,
  kOptAbort = 2,
  kOptList = 3,
  kOptStartTls = 5,
  kOptInfo = 6,
  kOptGo = 7,
  kOptStructuredReply = 8,
  kOptListMetaContext = 9,
  kOptSetMetaContext = 10,
};

inline constexpr uint32_t kRepErrBit = 1u << 31;
enum OptReply : uint32_t {
  kRepAck = 1,
  kRepServer = 2,
  kRepInfo = 3,
  kRepMetaContext = 4,
  kRepErrUnsup = kRepErrBit | 1,
  kRepErrPolicy = kRepErrBit | 2,
  kRepErrInvalid = kRepErrBit | 3,
  kRepErrPlatform = kRepErrBit | 4,
  kRepErrTlsReqd = kRepErrBit | 5,
  kRepErrUnknown = kRepErrBit | 6,
  kRepErrShutdown = kRepErrBit | 7,
  kRepErrBlockSizeReqd = kRepErrBit | 8,
  kRepErrTooBig = kRepErrBit | 9,
};

enum Info : uint16_t {
  kInfoExport = 0,
  kInfoName = 1,
  kInfoDescription = 2,
  kInfoBlockSize = 3,
};

// Transmission flags.
inline constexpr uint16_t kFlagHasFlags = 1 << 0;
inline constexpr uint16_t kFlagReadOnly = 1 << 1;
inline constexpr uint16_t kFlagSendFlush = 1 << 2;
inline constexpr uint16_t kFlagSendFua = 1 << 3;
inline constexpr uint16_t kFlagRotational = 1 << 4;
inline constexpr uint16_t kFlagSendTrim = 1 << 5;
inline constexpr uint16_t kFlagSendWriteZeroes = 1 << 6;
inline constexpr uint16_t kFlagSendDf = 1 << 7;
inline constexpr uint16_t kFlagCanMultiConn = 1 << 8;
inline constexpr uint16_t kFlagSendCache = 1 << 10;
inline constexpr uint16_t kFlagSendFastZero = 1 << 11;

// Requests.
inline constexpr uint32_t kRequestMagic = 0x25609513;
inline constexpr size_t kRequestHeaderSize = 28;
enum Command : uint16_t {
  kCmdRead = 0,
  kCmdWrite = 1,
  kCmdDisc = 2,
  kCmdFlush = 3,
  kCmdTrim = 4,
  kCmdCache = 5,
  kCmdWriteZeroes = 6,
  kCmdBlockStatus = 7,
};
inline constexpr uint16_t kCmdFlagFua = 1 << 0;
inline constexpr uint16_t kCmdFlagNoHole = 1 << 1;
inline constexpr uint16_t kCmdFlagDf = 1 << 2;
inline constexpr uint16_t kCmdFlagReqOne = 1 << 3;
inline constexpr uint16_t kCmdFlagFastZero = 1 << 4;

// Replies.
inline constexpr uint32_t kSimpleReplyMagic = 0x67446698;
inline constexpr uint32_t kStructuredReplyMagic = 0x668e33ef;
inline constexpr size_t kSimpleReplySize = 16;
inline constexpr size_t kStructuredReplyHeaderSize = 20;
inline constexpr uint16_t kReplyFlagDone = 1 << 0;
enum ReplyType : uint16_t {
  kReplyNone = 0,
  kReplyOffsetData = 1,
  kReplyOffsetHole = 2,
  kReplyBlockStatus = 5,
  kReplyError = (1 << 15) | 1,
  kReplyErrorOffset = (1 << 15) | 2,
};

// base:allocation.
inline constexpr uint32_t kStateHole = 1 << 0;
inline constexpr uint32_t kStateZero = 1 << 1;
inline constexpr char kBaseAllocation[] = "base:allocation";
inline constexpr uint32_t kBaseAllocationId = 1;

// Errors on the wire.
inline constexpr uint32_t kEPERM = 1, kEIO = 5, kENOMEM = 12, kEINVAL = 22, kENOSPC = 28,
                          kEOVERFLOW = 75, kENOTSUP = 95, kESHUTDOWN = 108;

// Maps an errno value to the NBD error sent to the client.
uint32_t ErrnoToNbd(int err);
const char* CommandName(uint16_t type);
// Names for logs: "NBD_OPT_GO", "NBD_REP_ERR_UNKNOWN", "NBD_OPT_99" for
// unknown numbers; TransmissionFlagNames gives "read-only flush fua ...".
std::string OptionName(uint32_t option);
std::string OptionReplyName(uint32_t type);
std::string TransmissionFlagNames(uint16_t flags);

// Big-endian helpers.
inline void Put16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}
inline void Put32(uint8_t* p, uint32_t v) {
  for (int i = 3; i >= 0; i--, v >>= 8) p[i] = static_cast<uint8_t>(v);
}
inline void Put64(uint8_t* p, uint64_t v) {
  for (int i = 7; i >= 0; i--, v >>= 8) p[i] = static_cast<uint8_t>(v);
}
inline uint16_t Get16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }
inline uint32_t Get32(const uint8_t* p) {
  return uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | p[3];
}
inline uint64_t Get64(const uint8_t* p) { return uint64_t{Get32(p)} << 32 | Get32(p + 4); }

struct RequestHeader {
  uint32_t magic;
  uint16_t flags;
  uint16_t type;
  uint64_t cookie;
  uint64_t offset;
  uint32_t length;
};
RequestHeader DecodeRequestHeader(const uint8_t p[kRequestHeaderSize]);
void EncodeRequestHeader(const RequestHeader& h, uint8_t p[kRequestHeaderSize]);

void EncodeSimpleReply(uint8_t p[kSimpleReplySize], uint32_t error, uint64_t cookie);
void EncodeStructuredReplyHeader(uint8_t p[kStructuredReplyHeaderSize], uint16_t flags,
                                 uint16_t type, uint64_t cookie, uint32_t length);

// ---- Structured reply chunks (one chunk, NBD_REPLY_FLAG_DONE) ----
// Each writes the chunk's header and its fixed fields into p and returns
// how many bytes of p it used; the variable part (message, data,
// descriptors) follows on the wire.
inline constexpr size_t kMaxReplyHeaderSize = 32;
// NBD_REPLY_TYPE_ERROR: error, then a message of message_len bytes.
size_t EncodeErrorChunk(uint8_t p[kMaxReplyHeaderSize], uint64_t cookie, uint32_t error,
                        uint16_t message_len);
// NBD_REPLY_TYPE_OFFSET_DATA: offset, then data_len bytes of data.
size_t EncodeOffsetDataChunk(uint8_t p[kMaxReplyHeaderSize], uint64_t cookie, uint64_t offset,
                             uint64_t data_len);
// NBD_REPLY_TYPE_BLOCK_STATUS: context id, then descriptors_len bytes of
// descriptors (EncodeBlockDescriptor).
size_t EncodeBlockStatusChunk(uint8_t p[kMaxReplyHeaderSize], uint64_t cookie,
                              uint32_t context_id, size_t descriptors_len);
inline constexpr size_t kBlockDescriptorSize = 8;
void EncodeBlockDescriptor(uint8_t p[kBlockDescriptorSize], uint32_t length, uint32_t flags);

// ---- Handshake (fixed newstyle) ----
inline constexpr size_t kGreetingSize = 18;
inline constexpr size_t kOptionHeaderSize = 16;
inline constexpr size_t kOptionReplyHeaderSize = 20;
// The reply to NBD_OPT_EXPORT_NAME: size, flags and, unless the client
// asked for no zeroes, 124 zero bytes.
inline constexpr size_t kExportNameReplySize = 10, kExportNameReplyZeroes = 124;

void EncodeGreeting(uint8_t p[kGreetingSize], uint16_t handshake_flags);
// False when p is no fixed newstyle greeting; else *handshake_flags.
bool DecodeGreeting(const uint8_t p[kGreetingSize], uint16_t* handshake_flags);

struct OptionHeader {
  uint64_t magic;  // kIHaveOpt
  uint32_t option;
  uint32_t length;  // of the data that follows
};
void EncodeOptionHeader(uint8_t p[kOptionHeaderSize], uint32_t option, uint32_t length);
OptionHeader DecodeOptionHeader(const uint8_t p[kOptionHeaderSize]);

struct OptionReplyHeader {
  uint64_t magic;  // kOptReplyMagic
  uint32_t option;
  uint32_t type;
  uint32_t length;
};
void EncodeOptionReplyHeader(uint8_t p[kOptionReplyHeaderSize], uint32_t option, uint32_t type,
                             uint32_t length);
OptionReplyHeader DecodeOptionReplyHeader(const uint8_t p[kOptionReplyHeaderSize]);

std::vector<uint8_t> EncodeExportNameReply(uint64_t size, uint16_t transmission_flags,
                                           bool no_zeroes);

// Why an option's data was refused: the NBD_REP_ERR_* to answer and a
// message for the client.
struct OptionError {
  uint32_t type = kRepErrInvalid;
  std::string message;
};

// NBD_OPT_INFO / NBD_OPT_GO data: export name, then the NBD_INFO_* asked.
struct InfoRequest {
  std::string name;
  std::vector<uint16_t> infos;
};
std::vector<uint8_t> EncodeInfoRequest(const InfoRequest& r);
// False (and *err) when data is malformed.
bool DecodeInfoRequest(std::string_view data, InfoRequest* out, OptionError* err);

// NBD_OPT_LIST_META_CONTEXT / NBD_OPT_SET_META_CONTEXT data.
struct MetaContextRequest {
  std::string name;
  std::vector<std::string> queries;
};
std::vector<uint8_t> EncodeMetaContextRequest(const MetaContextRequest& r);
// False (and *err) when data is malformed or a query is longer than
// max_query (NBD_REP_ERR_TOO_BIG).
bool DecodeMetaContextRequest(std::string_view data, size_t max_query, MetaContextRequest* out,
                              OptionError* err);

// Option reply payloads.
std::string EncodeServerReply(std::string_view export_name);                 // NBD_REP_SERVER
std::string EncodeMetaContextReply(uint32_t id, std::string_view context);   // NBD_REP_META_CONTEXT
std::string EncodeInfoExport(uint64_t size, uint16_t transmission_flags);    // NBD_INFO_EXPORT
std::string EncodeInfoText(uint16_t info, std::string_view text);  // NBD_INFO_NAME, _DESCRIPTION
std::string EncodeInfoBlockSize(uint32_t min_block, uint32_t preferred_block,
                                uint32_t max_payload);  // NBD_INFO_BLOCK_SIZE
// The client's side of the two: false when payload has the wrong length.
bool DecodeInfoExport(std::string_view payload, uint64_t* size, uint16_t* transmission_flags);
bool DecodeInfoBlockSize(std::string_view payload, uint32_t* min_block, uint32_t* preferred_block,
                         uint32_t* max_payload);

}  // namespace nbdr::nbd
