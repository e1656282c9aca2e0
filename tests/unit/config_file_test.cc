// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// Unit tests of the key = value config parser (utils/config_file.h).
#include "utils/config_file.h"

#include <gtest/gtest.h>

namespace nbdr {
namespace {

TEST(ConfigFile, ParsesKeysValuesCommentsAndQuotes) {
  auto e = ParseConfigText("# comment\n\nrpc-port = 1234\n  gluster-hosts=a,b \nx = \"q v\"\n",
                           "t.conf");
  ASSERT_TRUE(e.ok()) << e.status().message();
  ASSERT_EQ(e->size(), 3u);
  EXPECT_EQ((*e)[0].key, "rpc-port");
  EXPECT_EQ((*e)[0].value, "1234");
  EXPECT_EQ((*e)[0].origin, "t.conf:3");
  EXPECT_EQ((*e)[1].value, "a,b");
  EXPECT_EQ((*e)[2].value, "q v");
}

TEST(ConfigFile, NamesTheBadLine) {
  auto e = ParseConfigText("a = 1\nnonsense\n", "t.conf");
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.status().message().find("t.conf:2"), std::string::npos);
}

TEST(ConfigFile, AKeySetTwiceNamesBothLines) {
  auto e = ParseConfigText("log-level = info\n# x\nlog-level = debug\n", "t.conf");
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.status().message().find("t.conf:3: 'log-level' is already set at t.conf:1"),
            std::string::npos) << e.status().message();
}

}  // namespace
}  // namespace nbdr
