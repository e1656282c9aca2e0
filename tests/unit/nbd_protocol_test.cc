// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// Unit tests of the NBD wire codec (utils/nbd_protocol.h).
#include "utils/nbd_protocol.h"

#include <gtest/gtest.h>

#include <cerrno>

namespace nbdr::nbd {
namespace {

TEST(NbdProtocol, RequestHeaderRoundTripsInNetworkOrder) {
  RequestHeader h{kRequestMagic, kCmdFlagFua, kCmdWrite, 0x0102030405060708ULL,
                  0x1122334455667788ULL, 0xdeadbeef};
  uint8_t buf[kRequestHeaderSize];
  EncodeRequestHeader(h, buf);
  EXPECT_EQ(buf[0], 0x25);
  EXPECT_EQ(buf[3], 0x13);
  EXPECT_EQ(buf[7], kCmdWrite);
  RequestHeader d = DecodeRequestHeader(buf);
  EXPECT_EQ(d.magic, h.magic);
  EXPECT_EQ(d.flags, h.flags);
  EXPECT_EQ(d.type, h.type);
  EXPECT_EQ(d.cookie, h.cookie);
  EXPECT_EQ(d.offset, h.offset);
  EXPECT_EQ(d.length, h.length);
}

TEST(NbdProtocol, SimpleReplyLayout) {
  uint8_t buf[kSimpleReplySize];
  EncodeSimpleReply(buf, kEINVAL, 42);
  EXPECT_EQ(Get32(buf), kSimpleReplyMagic);
  EXPECT_EQ(Get32(buf + 4), 22u);
  EXPECT_EQ(Get64(buf + 8), 42u);
}

TEST(NbdProtocol, StructuredReplyLayout) {
  uint8_t buf[kStructuredReplyHeaderSize];
  EncodeStructuredReplyHeader(buf, kReplyFlagDone, kReplyOffsetData, 7, 4104);
  EXPECT_EQ(Get32(buf), kStructuredReplyMagic);
  EXPECT_EQ(Get16(buf + 4), kReplyFlagDone);
  EXPECT_EQ(Get16(buf + 6), kReplyOffsetData);
  EXPECT_EQ(Get64(buf + 8), 7u);
  EXPECT_EQ(Get32(buf + 16), 4104u);
}

TEST(NbdProtocol, ErrnoMapsToWireCodesNeverNegative) {
  EXPECT_EQ(ErrnoToNbd(0), 0u);
  EXPECT_EQ(ErrnoToNbd(EROFS), kEPERM);
  EXPECT_EQ(ErrnoToNbd(EPERM), kEPERM);
  EXPECT_EQ(ErrnoToNbd(EDQUOT), kENOSPC);
  EXPECT_EQ(ErrnoToNbd(EFBIG), kENOSPC);
  EXPECT_EQ(ErrnoToNbd(ENOSPC), kENOSPC);
  EXPECT_EQ(ErrnoToNbd(EINVAL), kEINVAL);
  EXPECT_EQ(ErrnoToNbd(ENOTSUP), kENOTSUP);
  EXPECT_EQ(ErrnoToNbd(ESHUTDOWN), kESHUTDOWN);
  EXPECT_EQ(ErrnoToNbd(ENOMEM), kENOMEM);
  EXPECT_EQ(ErrnoToNbd(ETIMEDOUT), kEIO);
  EXPECT_EQ(ErrnoToNbd(EBADF), kEIO);
}

TEST(NbdProtocol, NamesForLogs) {
  EXPECT_EQ(OptionName(kOptGo), "NBD_OPT_GO");
  EXPECT_EQ(OptionName(kOptSetMetaContext), "NBD_OPT_SET_META_CONTEXT");
  EXPECT_EQ(OptionName(99), "NBD_OPT_99");
  EXPECT_EQ(OptionReplyName(kRepErrUnknown), "NBD_REP_ERR_UNKNOWN");
  EXPECT_EQ(OptionReplyName(kRepErrTooBig), "NBD_REP_ERR_TOO_BIG");
  EXPECT_EQ(TransmissionFlagNames(kFlagHasFlags), "none");
  EXPECT_EQ(TransmissionFlagNames(kFlagHasFlags | kFlagReadOnly | kFlagSendFlush | kFlagCanMultiConn),
            "read-only flush multi-conn");
  EXPECT_EQ(TransmissionFlagNames(kFlagSendWriteZeroes | kFlagSendFastZero), "write-zeroes fast-zero");
}

}  // namespace
}  // namespace nbdr::nbd
