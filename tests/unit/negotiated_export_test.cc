// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// Unit tests of what a negotiated export allows (runner/negotiated_export.h):
// the transmission flags it advertises and ValidateRequest's verdict on
// each kind of request, table-driven.
#include "runner/negotiated_export.h"

#include <gtest/gtest.h>

#include <cerrno>
#include <utility>

namespace nbdr {
namespace {

using namespace nbd;

NegotiatedExport Export(uint32_t caps, bool readonly = false, bool structured = true) {
  NegotiatedExport e;
  e.size = 1 << 20;
  e.caps = caps;
  e.readonly = readonly;
  e.min_block = 4096;
  e.max_payload = 64 * 1024;
  e.structured = structured;
  e.client_knows_block_size = true;
  return e;
}

TEST(NegotiatedExport, FlagsFollowCapabilitiesAndReadOnly) {
  const uint32_t all = NBDR_CAP_FLUSH | NBDR_CAP_FUA | NBDR_CAP_TRIM | NBDR_CAP_WRITE_ZEROES |
                       NBDR_CAP_FAST_ZERO | NBDR_CAP_MULTI_CONN | NBDR_CAP_CACHE;
  EXPECT_EQ(Export(all).TransmissionFlags(),
            kFlagHasFlags | kFlagSendFlush | kFlagSendFua | kFlagSendTrim | kFlagSendWriteZeroes |
                kFlagSendFastZero | kFlagSendDf | kFlagCanMultiConn | kFlagSendCache);
  // Read-only: no trim or zeroing offered.
  EXPECT_EQ(Export(all, true, false).TransmissionFlags(),
            kFlagHasFlags | kFlagReadOnly | kFlagSendFlush | kFlagSendFua | kFlagCanMultiConn |
                kFlagSendCache);
  EXPECT_EQ(Export(0, false, false).TransmissionFlags(), kFlagHasFlags);
}

struct Case {
  const char* what;
  uint16_t type, flags;
  uint64_t offset;
  uint32_t length;
  uint32_t caps;
  bool readonly;
  int want;  // errno, 0: allowed
};

TEST(NegotiatedExport, ValidateRequestTable) {
  const uint32_t rw = NBDR_CAP_FLUSH | NBDR_CAP_FUA | NBDR_CAP_TRIM | NBDR_CAP_WRITE_ZEROES;
  const Case cases[] = {
      {"aligned read", kCmdRead, 0, 4096, 4096, rw, false, 0},
      {"read with DF (structured)", kCmdRead, kCmdFlagDf, 0, 4096, rw, false, 0},
      {"read with FUA", kCmdRead, kCmdFlagFua, 0, 4096, rw, false, EINVAL},
      {"read past the end", kCmdRead, 0, (1 << 20) - 4096, 8192, rw, false, EINVAL},
      {"write past the end", kCmdWrite, 0, 1 << 20, 4096, rw, false, ENOSPC},
      {"offset overflow", kCmdRead, 0, ~0ull - 100, 4096, rw, false, EINVAL},
      {"zero length", kCmdRead, 0, 0, 0, rw, false, EINVAL},
      {"unaligned offset", kCmdRead, 0, 512, 4096, rw, false, EINVAL},
      {"over max payload", kCmdRead, 0, 0, 128 * 1024, rw, false, EINVAL},
      {"write FUA with FUA cap", kCmdWrite, kCmdFlagFua, 0, 4096, rw, false, 0},
      {"write FUA without FUA cap", kCmdWrite, kCmdFlagFua, 0, 4096, NBDR_CAP_FLUSH, false, EINVAL},
      {"write on read-only", kCmdWrite, 0, 0, 4096, rw, true, EPERM},
      {"trim on read-only", kCmdTrim, 0, 0, 4096, rw, true, EPERM},
      {"trim not advertised", kCmdTrim, 0, 0, 4096, NBDR_CAP_FLUSH, false, EINVAL},
      {"flush ignores range", kCmdFlush, 0, 7, 0, rw, false, 0},
      {"flush not advertised", kCmdFlush, 0, 0, 0, 0, false, EINVAL},
      {"write zeroes no-hole", kCmdWriteZeroes, kCmdFlagNoHole, 0, 8192, rw, false, 0},
      {"fast zero without cap", kCmdWriteZeroes, kCmdFlagFastZero, 0, 8192, rw, false, EINVAL},
      {"zeroes past the end", kCmdWriteZeroes, 0, 1 << 20, 4096, rw, false, ENOSPC},
      {"cache not advertised", kCmdCache, 0, 0, 4096, rw, false, EINVAL},
      {"cache advertised", kCmdCache, 0, 0, 4096, rw | NBDR_CAP_CACHE, false, 0},
      {"block status without context", kCmdBlockStatus, 0, 0, 4096, rw, false, EINVAL},
      {"unknown command", 42, 0, 0, 4096, rw, false, EINVAL},
  };
  for (const Case& c : cases) {
    NegotiatedExport e = Export(c.caps, c.readonly);
    RequestHeader h{kRequestMagic, c.flags, c.type, 1, c.offset, c.length};
    const char* why = "";
    EXPECT_EQ(ValidateRequest(h, e, &why), c.want) << c.what << ": " << why;
    if (c.want) {
      EXPECT_STRNE(why, "") << c.what;
    }
  }
}

TEST(NegotiatedExport, BlockStatusNeedsBaseAllocation) {
  NegotiatedExport e = Export(0);
  e.base_allocation = true;
  RequestHeader h{kRequestMagic, kCmdFlagReqOne, kCmdBlockStatus, 1, 0, 4096};
  const char* why = "";
  EXPECT_EQ(ValidateRequest(h, e, &why), 0) << why;
}

TEST(NegotiatedExport, ClientUnawareOfBlockSizeGetsByteGranularity) {
  // The NBD spec: a client that negotiated no block sizes may send any
  // offset and length; the runner accepts them when the handler can.
  NegotiatedExport e = Export(0);
  e.client_knows_block_size = false;
  const char* why = "";
  for (auto [offset, length] : {std::pair<uint64_t, uint32_t>{1, 512}, {100, 1}, {4095, 3}}) {
    RequestHeader h{kRequestMagic, 0, kCmdRead, 1, offset, length};
    EXPECT_EQ(ValidateRequest(h, e, &why), 0) << offset << "+" << length << ": " << why;
  }
  EXPECT_EQ(RequiredAlignment(e), 1u);
  // A client that asked keeps the advertised minimum.
  e.client_knows_block_size = true;
  RequestHeader h{kRequestMagic, 0, kCmdRead, 1, 100, 1};
  EXPECT_EQ(ValidateRequest(h, e, &why), EINVAL);
  EXPECT_EQ(RequiredAlignment(e), 4096u);
}

TEST(NegotiatedExport, HandlerAlignmentIsTheRunnersJobNotTheClients) {
  // A handler that needs 512-byte alignment gets it by read-modify-write
  // (realigned_io.h); the client that asked for nothing is not refused.
  NegotiatedExport e = Export(0);
  e.client_knows_block_size = false;
  e.handler_min_block = 512;
  EXPECT_EQ(RequiredAlignment(e), 1u);
  RequestHeader h{kRequestMagic, 0, kCmdWrite, 1, 3, 5};
  const char* why = "";
  EXPECT_EQ(ValidateRequest(h, e, &why), 0) << why;
}

}  // namespace
}  // namespace nbdr
