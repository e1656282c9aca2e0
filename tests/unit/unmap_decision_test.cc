// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// Unit tests of whose mapping "nbd-cli TYPE unmap KEY" may end
// (cli/unmap_decision.h): a table of the cases an operator meets, then
// every one of the 256 combinations of facts against the rules that must
// hold whatever the combination.
#include "cli/unmap_decision.h"

#include <gtest/gtest.h>

namespace nbdr::cli {
namespace {

using V = UnmapVerdict;

struct Row {
  const char* what;
  UnmapFacts f;
  V want;
};

// Fields: mapped, in_progress, device_holds_this, same_runner,
// device_in_use_here, has_client, client_is_this_host, force.
TEST(UnmapDecision, Table) {
  const Row rows[] = {
      {"created: nothing to unmap", {false, false, false, false, false, false, false, false},
       V::kNotMapped},
      {"created, even with force", {false, false, false, false, false, false, false, true},
       V::kNotMapped},
      {"this host's device holds it", {true, false, true, true, true, true, true, false},
       V::kDisconnect},
      {"this host's device holds it, force", {true, false, true, true, true, true, true, true},
       V::kDisconnect},
      {"held here via another runner address", {true, false, true, false, true, true, true, false},
       V::kRefuseOtherRunnerName},
      {"held here via another address, force", {true, false, true, false, true, true, true, true},
       V::kForceClear},
      {"another host's mapping", {true, false, false, false, false, true, false, false},
       V::kRefuseElsewhere},
      {"another host's mapping, device busy here", {true, false, false, false, true, true, false, false},
       V::kRefuseHeldHere},
      {"another host's mapping, force", {true, false, false, false, false, true, false, true},
       V::kForceClear},
      {"own record, device gone (reboot)", {true, false, false, false, false, true, true, false},
       V::kClearStaleOwn},
      {"own record, device reused by another disk", {true, false, false, false, true, true, true, false},
       V::kClearStaleOwn},
      {"own map still in progress", {true, true, false, false, false, true, true, false},
       V::kRefuseElsewhere},
      {"no client recorded", {true, false, false, false, false, false, false, false},
       V::kRefuseElsewhere},
      {"dead mapping of no client, force", {true, false, false, false, false, false, false, true},
       V::kForceClear},
  };
  for (const Row& r : rows)
    EXPECT_EQ(DecideUnmapByKey(r.f), r.want)
        << r.what << ": got " << UnmapVerdictName(DecideUnmapByKey(r.f));
}

TEST(UnmapDecision, EveryCombinationKeepsTheRules) {
  for (unsigned bits = 0; bits < 256; bits++) {
    UnmapFacts f{(bits & 1) != 0,  (bits & 2) != 0,  (bits & 4) != 0,  (bits & 8) != 0,
                 (bits & 16) != 0, (bits & 32) != 0, (bits & 64) != 0, (bits & 128) != 0};
    const V v = DecideUnmapByKey(f);
    SCOPED_TRACE(testing::Message() << "facts " << bits << ": " << UnmapVerdictName(v));
    // Nothing happens to a backstore that is not mapped.
    EXPECT_EQ(v == V::kNotMapped, !f.mapped);
    if (!f.mapped) continue;
    // Only a device of this host that holds this backstore of this runner
    // is disconnected.
    EXPECT_EQ(v == V::kDisconnect, f.device_holds_this && f.same_runner);
    // Without force, no record but this host's own (and not one being
    // mapped) is cleared.
    if (!f.force) {
      EXPECT_NE(v, V::kForceClear);
      if (v == V::kClearStaleOwn) {
        EXPECT_TRUE(f.has_client && f.client_is_this_host && !f.in_progress);
        EXPECT_FALSE(f.device_holds_this);
      }
    } else {
      // Force never refuses and never clears less than the whole record.
      EXPECT_TRUE(v == V::kDisconnect || v == V::kForceClear);
    }
  }
}

}  // namespace
}  // namespace nbdr::cli
