// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// Unit tests of saveconfig.json reading and writing (runner/saveconfig.h).
#include "runner/saveconfig.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

namespace nbdr {
namespace {

BackstoreRecord Sample() {
  BackstoreRecord r;
  r.type = "file";
  r.key = "disks/a.img";
  r.size = 1ull << 30;
  r.block_size = 4096;
  r.readonly = true;
  r.prealloc = true;
  r.status = NBDR_STATUS_MAPPED;
  r.device = "/dev/nbd3";
  r.client = "host-a (machine 0123456789ab)";
  r.owner = "x509:CN=client1,O=Example";
  r.map_time = "2026-11-22T10:00:00Z";
  r.create_time = "2026-11-21T10:00:00Z";
  r.extras_json = "{\"volfile_server\":\"h1\"}";
  r.runners = {"node1:24110", "10.0.0.2:7000", "[fd00::3]:24110"};
  r.rolling_back = "before-upgrade";
  return r;
}

TEST(Saveconfig, RoundTripsEveryField) {
  auto parsed = ParseSaveconfig(SaveconfigToJson({Sample()}), "t");
  ASSERT_TRUE(parsed.ok()) << parsed.status().message();
  ASSERT_EQ(parsed->size(), 1u);
  const BackstoreRecord& r = (*parsed)[0];
  EXPECT_EQ(r.type, "file");
  EXPECT_EQ(r.key, "disks/a.img");
  EXPECT_EQ(r.size, 1ull << 30);
  EXPECT_EQ(r.block_size, 4096u);
  EXPECT_TRUE(r.readonly);
  EXPECT_TRUE(r.prealloc);
  EXPECT_EQ(r.status, NBDR_STATUS_MAPPED);
  EXPECT_EQ(r.device, "/dev/nbd3");
  EXPECT_EQ(r.client, "host-a (machine 0123456789ab)");
  EXPECT_EQ(r.owner, "x509:CN=client1,O=Example");
  EXPECT_EQ(r.map_time, "2026-11-22T10:00:00Z");
  EXPECT_EQ(r.create_time, "2026-11-21T10:00:00Z");
  EXPECT_NE(r.extras_json.find("volfile_server"), std::string::npos);
  EXPECT_EQ(r.runners, Sample().runners);
  EXPECT_EQ(r.rolling_back, "before-upgrade");
}

TEST(Saveconfig, CorruptFilesAreRefusedWithTheCause) {
  const char* bad[] = {
      "",
      "{",
      "[]",
      "{\"version\": 1}",
      "{\"version\": 2, \"backstores\": []}",
      "{\"version\": 1, \"backstores\": [{\"type\": \"file\"}]}",
      "{\"version\": 1, \"backstores\": [{\"type\": \"file\", \"key\": \"../x\", \"size\": 512}]}",
      "{\"version\": 1, \"backstores\": [{\"type\": \"file\", \"key\": \"x\", \"size\": 0}]}",
      "{\"version\": 1, \"backstores\": [{\"type\": \"file\", \"key\": \"x\", \"size\": 1000}]}",
      "{\"version\": 1, \"backstores\": [{\"type\": \"file\", \"key\": \"x\", \"size\": 1024, "
      "\"block_size\": 4096}]}",
      "{\"version\": 1, \"backstores\": [{\"type\": \"file\", \"key\": \"x\", \"size\": 512, "
      "\"status\": \"weird\"}]}",
      "{\"version\": 1, \"backstores\": []} trailing",
  };
  for (const char* text : bad) {
    auto p = ParseSaveconfig(text, "/etc/x/saveconfig.json");
    EXPECT_FALSE(p.ok()) << "accepted: " << text;
    if (!p.ok()) {
      EXPECT_NE(p.status().message().find("/etc/x/saveconfig.json"), std::string::npos);
    }
  }
}

// One runner more than a runner set may hold.
std::string SeventeenRunners() {
  std::string list;
  for (int i = 0; i < 17; i++) list += (i ? ", \"n" : "\"n") + std::to_string(i) + ":24110\"";
  return list;
}

// Every field within the limits the control protocol enforces, and of its
// JSON type: one bad record would otherwise make LIST fail for all.
TEST(Saveconfig, FieldsOutsideTheProtocolsLimitsAreRefused) {
  auto record = [](const std::string& member) {
    return "{\"version\": 1, \"backstores\": [{\"type\": \"file\", \"key\": \"x\", "
           "\"size\": 512, " +
           member + "}]}";
  };
  const std::string bad[] = {
      record("\"device\": \"/dev/nbd" + std::string(300, '1') + "\""),
      record("\"device\": \"/dev/sda\""),
      record("\"client\": \"" + std::string(300, 'h') + "\""),
      record("\"client\": \"a\\u001b[31mb\""),
      record("\"owner\": \"root\""),
      record("\"owner\": \"psk:" + std::string(2000, 'a') + "\""),
      record("\"map_time\": \"" + std::string(100, '2') + "\""),
      record("\"create_time\": \"yesterday\""),
      record("\"extras\": {\"a\": \"" + std::string(5000, 'x') + "\"}"),
      record("\"device\": 7"),
      record("\"readonly\": \"yes\""),
      record("\"block_size\": \"4096\""),
      record("\"extras\": []"),
      record("\"runners\": \"node1:24110\""),
      record("\"runners\": [\"node1\"]"),
      record("\"runners\": [\"node1:24110\", \"node1:24110\"]"),
      record("\"runners\": [\"fd00::1:24110\"]"),
      record("\"runners\": [\"node 1:24110\"]"),
      record("\"runners\": [7]"),
      record("\"rolling_back\": \"../x\""),
      record("\"rolling_back\": \"" + std::string(100, 's') + "\""),
      record("\"rolling_back\": 1"),
      record("\"runners\": [" + SeventeenRunners() + "]"),
  };
  for (const std::string& text : bad) {
    auto p = ParseSaveconfig(text, "/etc/x/saveconfig.json");
    EXPECT_FALSE(p.ok()) << "accepted: " << text.substr(0, 200);
    if (!p.ok()) {
      EXPECT_NE(p.status().message().find("(file/x)"), std::string::npos);
    }
  }
  EXPECT_TRUE(ParseSaveconfig(record("\"owner\": \"uid:0\", \"device\": \"/dev/nbd3\""), "t").ok());
}

TEST(Saveconfig, DuplicateEntriesAreRefused) {
  std::string text = SaveconfigToJson({Sample(), Sample()});
  EXPECT_FALSE(ParseSaveconfig(text, "t").ok());
}

TEST(Saveconfig, StoreIsAtomicAndLoadReadsItBack) {
  char dir[] = "/tmp/nbdr-saveconfig-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  std::string path = std::string(dir) + "/saveconfig.json";
  auto empty = LoadSaveconfig(path);
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());
  ASSERT_TRUE(StoreSaveconfig(path, {Sample()}).ok());
  EXPECT_NE(access((path + ".tmp").c_str(), F_OK), 0);  // no temp file left behind
  auto loaded = LoadSaveconfig(path);
  ASSERT_TRUE(loaded.ok());
  EXPECT_EQ(loaded->size(), 1u);
  unlink(path.c_str());
  rmdir(dir);
}

TEST(Saveconfig, LoadLeavesACorruptFileUntouched) {
  char dir[] = "/tmp/nbdr-saveconfig-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  std::string path = std::string(dir) + "/saveconfig.json";
  { std::ofstream(path) << "{ not json"; }
  auto loaded = LoadSaveconfig(path);
  EXPECT_FALSE(loaded.ok());
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  EXPECT_EQ(ss.str(), "{ not json");
  unlink(path.c_str());
  rmdir(dir);
}

}  // namespace
}  // namespace nbdr
