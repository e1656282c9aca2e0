// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// Unit tests of key, type and export name validation (utils/names.h).
#include "utils/names.h"

#include <gtest/gtest.h>

namespace nbdr {
namespace {

TEST(Names, AcceptsRelativeKeys) {
  EXPECT_TRUE(ValidateKey("disk.img").ok());
  EXPECT_TRUE(ValidateKey("disks/a.img").ok());
  EXPECT_TRUE(ValidateKey("vol1/dir/sub/a.img").ok());
  EXPECT_TRUE(ValidateKey("dïsk-ünïcode.img").ok());
  EXPECT_TRUE(ValidateKey("..hidden").ok());
}

TEST(Names, RefusesEscapesAndControlCharacters) {
  EXPECT_FALSE(ValidateKey("").ok());
  EXPECT_FALSE(ValidateKey("/etc/passwd").ok());
  EXPECT_FALSE(ValidateKey("../x").ok());
  EXPECT_FALSE(ValidateKey("a/../../x").ok());
  EXPECT_FALSE(ValidateKey("a/..").ok());
  EXPECT_FALSE(ValidateKey("a/./b").ok());
  EXPECT_FALSE(ValidateKey("a//b").ok());
  EXPECT_FALSE(ValidateKey("a/").ok());
  EXPECT_FALSE(ValidateKey(std::string("a\0b", 3)).ok());
  EXPECT_FALSE(ValidateKey("a\nb").ok());
  EXPECT_FALSE(ValidateKey("a\x7f").ok());
  EXPECT_FALSE(ValidateKey("\xff\xfe").ok());           // not UTF-8
  EXPECT_FALSE(ValidateKey("\xc0\xaf").ok());           // overlong '/'
  EXPECT_FALSE(ValidateKey(std::string(4097, 'a')).ok());
  EXPECT_TRUE(ValidateKey(std::string(4096, 'a')).ok());
}

TEST(Names, NewKeysFitAnExportName) {
  // "file/" + 4091 bytes is the longest export name NBD allows.
  EXPECT_TRUE(ValidateNewKey("file", std::string(4091, 'a')).ok());
  Status s = ValidateNewKey("file", std::string(4092, 'a'));
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("would be 4097 bytes"), std::string::npos) << s.message();
  EXPECT_FALSE(ValidateNewKey("gluster", std::string(4089, 'a')).ok());
  EXPECT_FALSE(ValidateNewKey("file", "../x").ok());
}

TEST(Names, MessagesNeverEchoControlCharacters) {
  Status s = ValidateKey("a\nb");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.message().find('\n'), std::string::npos);
}

TEST(Names, ValidatesTypes) {
  EXPECT_TRUE(ValidateType("file").ok());
  EXPECT_TRUE(ValidateType("my_handler-2").ok());
  EXPECT_FALSE(ValidateType("").ok());
  EXPECT_FALSE(ValidateType("File").ok());
  EXPECT_FALSE(ValidateType("a/b").ok());
  EXPECT_FALSE(ValidateType(std::string(33, 'a')).ok());
}

TEST(Names, SplitsExportNames) {
  auto e = ParseExportName("gluster/vol/disks/a.img");
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->type, "gluster");
  EXPECT_EQ(e->key, "vol/disks/a.img");
  EXPECT_FALSE(ParseExportName("nokey").ok());
  EXPECT_FALSE(ParseExportName("file/").ok());
  EXPECT_FALSE(ParseExportName("file/../x").ok());
  EXPECT_FALSE(ParseExportName("/file/x").ok());
}

TEST(Names, HostIdentityIsOnePrintableLineOfAtMost255Bytes) {
  EXPECT_TRUE(ValidateHostId("node1 (machine 0123456789ab)").ok());
  EXPECT_TRUE(ValidateHostId(std::string(kMaxHostIdLength, 'h')).ok());
  EXPECT_FALSE(ValidateHostId("").ok());
  EXPECT_FALSE(ValidateHostId(std::string(kMaxHostIdLength + 1, 'h')).ok());
  EXPECT_FALSE(ValidateHostId("host\nx").ok());
  EXPECT_FALSE(ValidateHostId("tab\there").ok());
  EXPECT_FALSE(ValidateHostId("del\x7f").ok());
  Status s = ValidateHostId("a\x1b[2Jb");
  EXPECT_NE(s.message().find("control characters"), std::string::npos);
  EXPECT_EQ(s.message().find('\x1b'), std::string::npos);
}

TEST(TlsIdentity, AcceptsPskIdentitiesAndDistinguishedNames) {
  EXPECT_TRUE(ValidateTlsIdentity("psk:alice").ok());
  EXPECT_TRUE(ValidateTlsIdentity("x509:CN=client1,O=Example Corp").ok());
  for (const char* bad : {"alice", "psk:", "x509:", "psk:a:b", "psk:a,b", "PSK:alice", "x509:CN=a\nb"})
    EXPECT_FALSE(ValidateTlsIdentity(bad).ok()) << bad;
  EXPECT_FALSE(ValidateTlsIdentity("psk:" + std::string(kMaxTlsIdentityLength, 'a')).ok());
}

TEST(TlsIdentity, ListsSplitOnlyWhereTheNextIdentityStarts) {
  auto ids = ParseTlsIdentityList("psk:alice,x509:CN=client1,O=Example,psk:bob");
  ASSERT_TRUE(ids.ok());
  EXPECT_EQ(*ids, (std::vector<std::string>{"psk:alice", "x509:CN=client1,O=Example", "psk:bob"}));
  // Each identity is written with its prefix: "psk:alice,bob" is a mistake.
  auto both = ParseTlsIdentityList("psk:alice,bob");
  ASSERT_FALSE(both.ok());
  EXPECT_NE(both.status().message().find("psk:alice,psk:bob"), std::string::npos);
  EXPECT_FALSE(ParseTlsIdentityList("").ok());
}

TEST(Names, ParseNbdDevice) {
  EXPECT_EQ(ParseNbdDevice("/dev/nbd0"), 0);
  EXPECT_EQ(ParseNbdDevice("/dev/nbd15"), 15);
  EXPECT_EQ(ParseNbdDevice("/dev/nbd999999"), 999999);
  for (const char* bad : {"", "/dev/nbd", "/dev/nbd1234567", "/dev/nbd1p1", "/dev/nbd-1",
                          "nbd0", "/dev/sda", "/dev/nbd0\n", " /dev/nbd0",
                          "/dev/nbd0164", "/dev/nbd00"})  // found by fuzz_parsers
    EXPECT_EQ(ParseNbdDevice(bad), -1) << bad;
}

TEST(Names, SnapshotNames) {
  for (const char* good : {"s1", "before-upgrade", "2026.12.07_nightly", "A"})
    EXPECT_TRUE(ValidateSnapshotName(good).ok()) << good;
  for (const char* bad : {"", ".hidden", "a/b", "a@b", "a b", "a\nb", "é"})
    EXPECT_FALSE(ValidateSnapshotName(bad).ok()) << bad;
  EXPECT_FALSE(ValidateSnapshotName(std::string(65, 'a')).ok());
  EXPECT_TRUE(ValidateSnapshotName(std::string(64, 'a')).ok());
  // A control character is never echoed back.
  EXPECT_EQ(ValidateSnapshotName("a\x01").message().find('\x01'), std::string::npos);
}

TEST(Names, SplitSnapshotKey) {
  std::string key, name;
  ASSERT_TRUE(SplitSnapshotKey("disks/a.img@s1", &key, &name));
  EXPECT_EQ(key, "disks/a.img");
  EXPECT_EQ(name, "s1");
  // At the last '@': a key may hold one.
  ASSERT_TRUE(SplitSnapshotKey("mail@host/a.img@s1", &key, &name));
  EXPECT_EQ(key, "mail@host/a.img");
  for (const char* no : {"disks/a.img", "@s1", "a.img@", "a.img@.x", "a.img@b/c"})
    EXPECT_FALSE(SplitSnapshotKey(no, &key, &name)) << no;
}

}  // namespace
}  // namespace nbdr
