// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// Unit tests of ParseHostPort (utils/net.h): the HOST[:PORT] that nbd-cli
// takes from its command line, $NBD_RUNNER_HOST and cli.conf.
#include <gtest/gtest.h>

#include "utils/net.h"

namespace nbdr {
namespace {

TEST(ParseHostPort, Accepts) {
  struct Case {
    const char* text;
    const char* host;
    uint16_t port;
  } cases[] = {
      {"node1", "node1", 24110},       {"node1:7000", "node1", 7000},
      {"10.0.0.1", "10.0.0.1", 24110}, {"[fd00::1]:24", "fd00::1", 24},
      {"[fd00::1]", "fd00::1", 24110}, {"fd00::1", "fd00::1", 24110},
  };
  for (const Case& c : cases) {
    auto hp = ParseHostPort(c.text, 24110);
    ASSERT_TRUE(hp.ok()) << c.text << ": " << hp.status().message();
    EXPECT_EQ(hp->host, c.host) << c.text;
    EXPECT_EQ(hp->port, c.port) << c.text;
  }
}

TEST(ParseHostPort, Refuses) {
  for (const char* text :
       {"", ":24110", "[]", "[]:1", "node1:", "node1:99999", "node1:x", "[fd00::1", "[fd00::1]x"}) {
    auto hp = ParseHostPort(text, 24110);
    EXPECT_FALSE(hp.ok()) << "'" << text << "' was taken";
  }
}

// A runner of a runner set is stored in one canonical form, so that one
// runner is never listed twice under two spellings of one address.
TEST(RunnerAddress, CanonicalHostPortOnly) {
  for (const char* text : {"node1:24110", "10.0.0.1:7000", "[fd00::1]:24110"})
    EXPECT_TRUE(ValidateRunnerAddress(text).ok()) << text;
  for (const char* text : {"node1", "node1:0", "fd00::1", "[fd00::1]", "node1:024110",
                           "[node1]:24110", "node 1:24110", "node1:24110\n", ""})
    EXPECT_FALSE(ValidateRunnerAddress(text).ok()) << "'" << text << "' was taken";
  EXPECT_EQ(FormatHostPort({"fd00::1", 24}), "[fd00::1]:24");
  EXPECT_EQ(FormatHostPort({"node1", 24110}), "node1:24110");
}

}  // namespace
}  // namespace nbdr
