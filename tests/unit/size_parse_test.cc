// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// Unit tests of the size parser (utils/size_parse.h).
#include "utils/size_parse.h"

#include <gtest/gtest.h>

namespace nbdr {
namespace {

uint64_t Ok(const char* text) {
  auto v = ParseBackstoreSize(text);
  EXPECT_TRUE(v.ok()) << text << ": " << v.status().message();
  return v.ok() ? *v : 0;
}

int Err(const char* text) {
  auto v = ParseBackstoreSize(text);
  EXPECT_FALSE(v.ok()) << text << " parsed as " << (v.ok() ? *v : 0);
  return v.ok() ? 0 : v.status().code();
}

TEST(SizeParse, AcceptsPlainBytesAndBinaryUnits) {
  EXPECT_EQ(Ok("1048576"), 1048576u);
  EXPECT_EQ(Ok("512B"), 512u);
  EXPECT_EQ(Ok("4K"), 4096u);
  EXPECT_EQ(Ok("4KiB"), 4096u);
  EXPECT_EQ(Ok("4kb"), 4096u);
  EXPECT_EQ(Ok("1M"), 1u << 20);
  EXPECT_EQ(Ok("1MiB"), 1u << 20);
  EXPECT_EQ(Ok("1G"), 1ull << 30);
  EXPECT_EQ(Ok("1GiB"), 1ull << 30);
  EXPECT_EQ(Ok("1T"), 1ull << 40);
  EXPECT_EQ(Ok(" 2 G "), 2ull << 30);
}

TEST(SizeParse, AcceptsExactFractions) {
  EXPECT_EQ(Ok("1.5G"), 3ull << 29);
  EXPECT_EQ(Ok("0.5K"), 512u);
}

TEST(SizeParse, RefusesJunkZeroNegativeAndUnaligned) {
  EXPECT_EQ(Err(""), EINVAL);
  EXPECT_EQ(Err("abc"), EINVAL);
  EXPECT_EQ(Err("12X"), EINVAL);
  EXPECT_EQ(Err("1G1"), EINVAL);
  EXPECT_EQ(Err("0"), EINVAL);
  EXPECT_EQ(Err("0G"), EINVAL);
  EXPECT_EQ(Err("-1G"), EINVAL);
  EXPECT_EQ(Err("+1G"), EINVAL);
  EXPECT_EQ(Err("1000"), EINVAL);  // not a multiple of 512
  EXPECT_EQ(Err("1.1K"), EINVAL);  // not a whole number of bytes
  EXPECT_EQ(Err("."), EINVAL);
  EXPECT_EQ(Err("1."), EINVAL);
}

TEST(SizeParse, RefusesOverflow) {
  EXPECT_EQ(Err("16E"), EOVERFLOW);
  EXPECT_EQ(Err("99999999999999999999999"), EOVERFLOW);
  EXPECT_EQ(Err("9223372036854775808"), EOVERFLOW);
  EXPECT_EQ(Err("8589934592G"), EOVERFLOW);
}

TEST(SizeParse, ErrorsSayWhy) {
  auto v = ParseBackstoreSize("1000");
  ASSERT_FALSE(v.ok());
  EXPECT_NE(v.status().message().find("multiple of 512"), std::string::npos);
}

TEST(SizeParse, FormatsExactAndFractional) {
  EXPECT_EQ(FormatSize(512), "512 B");
  EXPECT_EQ(FormatSize(1ull << 30), "1 GiB");
  EXPECT_EQ(FormatSize(3ull << 29), "1.50 GiB");
}

}  // namespace
}  // namespace nbdr
