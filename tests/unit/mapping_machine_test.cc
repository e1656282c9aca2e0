// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// Unit tests of the kernel-mapping state machine (runner/mapping_machine.h):
// every transition from every state, table-driven, and the ownership
// rules (tokens, client and device) that keep two hosts off one disk.
#include "runner/mapping_machine.h"

#include <gtest/gtest.h>

#include <cerrno>

namespace nbdr {
namespace {

BackstoreRecord Record(BackstoreStatus status, const std::string& device = "",
                       const std::string& client = "") {
  BackstoreRecord r;
  r.type = "file";
  r.key = "a.img";
  r.status = status;
  r.device = device;
  r.client = client;
  return r;
}

const BackstoreStatus kAll[] = {NBDR_STATUS_CREATED, NBDR_STATUS_MAPPING, NBDR_STATUS_MAPPED,
                                NBDR_STATUS_DEAD};

TEST(MappingMachine, BeginOnlyFromCreated) {
  for (BackstoreStatus s : kAll) {
    BackstoreRecord r = Record(s, "/dev/nbd3", "host-a");
    MapTicket t{1, 7};
    Status st = mapping::Begin(&r, &t, "host-b", 100, 8);
    if (s == NBDR_STATUS_CREATED) {
      ASSERT_TRUE(st.ok()) << st.message();
      EXPECT_EQ(r.status, NBDR_STATUS_MAPPING);
      EXPECT_EQ(r.client, "host-b");
      EXPECT_EQ(r.device, "");
      EXPECT_EQ(t.token, 8u);
      EXPECT_EQ(t.since, 100);
    } else {
      EXPECT_EQ(st.code(), EBUSY) << StatusName(s);
      EXPECT_EQ(r.status, s);  // unchanged
      EXPECT_EQ(r.client, "host-a");
      EXPECT_EQ(t.token, 7u);
    }
  }
}

struct ConfirmCase {
  const char* what;
  BackstoreRecord before;
  uint64_t ticket_token;
  std::string device, client;
  uint64_t token;
  int want;  // errno, 0: mapped
};

TEST(MappingMachine, ConfirmTable) {
  const ConfirmCase cases[] = {
      {"the map that began it", Record(NBDR_STATUS_MAPPING, "", "h"), 5, "/dev/nbd0", "h", 5, 0},
      {"a map whose token expired", Record(NBDR_STATUS_MAPPING, "", "h"), 6, "/dev/nbd0", "h", 5,
       EBUSY},
      {"no token for a mapping", Record(NBDR_STATUS_MAPPING, "", "h"), 5, "/dev/nbd0", "h", 0,
       EBUSY},
      {"reconnect: same client and device", Record(NBDR_STATUS_DEAD, "/dev/nbd0", "h"), 0,
       "/dev/nbd0", "h", 0, 0},
      {"reconnect after a restart before confirm", Record(NBDR_STATUS_DEAD, "", "h"), 0,
       "/dev/nbd2", "h", 0, 0},
      {"reconnect of an old record (no client)", Record(NBDR_STATUS_DEAD, "/dev/nbd0", ""), 0,
       "/dev/nbd0", "h", 0, 0},
      {"dead, another client", Record(NBDR_STATUS_DEAD, "/dev/nbd0", "h"), 0, "/dev/nbd0", "x", 0,
       EBUSY},
      {"dead, another device", Record(NBDR_STATUS_DEAD, "/dev/nbd0", "h"), 0, "/dev/nbd1", "h", 0,
       EBUSY},
      {"nothing being mapped", Record(NBDR_STATUS_CREATED), 0, "/dev/nbd0", "h", 0, EINVAL},
      {"already mapped", Record(NBDR_STATUS_MAPPED, "/dev/nbd0", "h"), 5, "/dev/nbd0", "h", 5,
       EINVAL},
  };
  for (const ConfirmCase& c : cases) {
    BackstoreRecord r = c.before;
    MapTicket t{0, c.ticket_token};
    Status st = mapping::Confirm(&r, t, c.device, c.client, c.token, "2026-12-06T13:00:00Z");
    EXPECT_EQ(st.code(), c.want) << c.what << ": " << st.message();
    if (c.want == 0) {
      EXPECT_EQ(r.status, NBDR_STATUS_MAPPED) << c.what;
      EXPECT_EQ(r.device, c.device) << c.what;
      EXPECT_EQ(r.client, c.client) << c.what;
      EXPECT_EQ(r.map_time, "2026-12-06T13:00:00Z") << c.what;
    } else {
      EXPECT_EQ(r.status, c.before.status) << c.what;
      EXPECT_EQ(r.device, c.before.device) << c.what;
    }
  }
}

struct UnmapCase {
  const char* what;
  BackstoreRecord before;
  uint64_t ticket_token;
  UnmapOnly only;
  int want;
};

TEST(MappingMachine, UnmapTable) {
  const UnmapCase cases[] = {
      {"not mapped", Record(NBDR_STATUS_CREATED), 0, {}, EINVAL},
      {"any mapping, no limit", Record(NBDR_STATUS_MAPPED, "/dev/nbd0", "h"), 3, {}, 0},
      {"a dead mapping, no limit", Record(NBDR_STATUS_DEAD, "/dev/nbd0", "h"), 0, {}, 0},
      {"by its own token", Record(NBDR_STATUS_MAPPING, "", "h"), 3, {"", "", 3}, 0},
      {"by another map's token", Record(NBDR_STATUS_MAPPING, "", "h"), 4, {"", "", 3}, EBUSY},
      {"by device and client", Record(NBDR_STATUS_MAPPED, "/dev/nbd0", "h"), 0,
       {"/dev/nbd0", "h", 0}, 0},
      {"another device", Record(NBDR_STATUS_MAPPED, "/dev/nbd0", "h"), 0, {"/dev/nbd1", "h", 0},
       EBUSY},
      {"another client's device of that name", Record(NBDR_STATUS_MAPPED, "/dev/nbd0", "h"), 0,
       {"/dev/nbd0", "x", 0}, EBUSY},
      {"a record of no client, by device", Record(NBDR_STATUS_DEAD, "/dev/nbd0", ""), 0,
       {"/dev/nbd0", "x", 0}, 0},
  };
  for (const UnmapCase& c : cases) {
    BackstoreRecord r = c.before;
    MapTicket t{0, c.ticket_token};
    Status st = mapping::Unmap(&r, &t, c.only);
    EXPECT_EQ(st.code(), c.want) << c.what << ": " << st.message();
    if (c.want == 0) {
      EXPECT_EQ(r.status, NBDR_STATUS_CREATED) << c.what;
      EXPECT_EQ(r.device, "") << c.what;
      EXPECT_EQ(r.client, "") << c.what;
      EXPECT_EQ(t.token, 0u) << c.what;
    } else {
      EXPECT_EQ(r.status, c.before.status) << c.what;
    }
  }
}

TEST(MappingMachine, ConnectionLostExpireAndRestart) {
  for (BackstoreStatus s : kAll) {
    BackstoreRecord r = Record(s, "/dev/nbd0", "h");
    EXPECT_EQ(mapping::ConnectionLost(&r), s == NBDR_STATUS_MAPPED) << StatusName(s);
    EXPECT_EQ(r.status, s == NBDR_STATUS_MAPPED ? NBDR_STATUS_DEAD : s);

    r = Record(s, "", "h");
    MapTicket t{100, 9};
    EXPECT_FALSE(mapping::Expire(&r, &t, 159, 60)) << StatusName(s);  // not yet
    EXPECT_EQ(mapping::Expire(&r, &t, 160, 60), s == NBDR_STATUS_MAPPING) << StatusName(s);
    if (s == NBDR_STATUS_MAPPING) {
      EXPECT_EQ(r.status, NBDR_STATUS_CREATED);
      EXPECT_EQ(r.client, "");
      EXPECT_EQ(t.token, 0u);
    }

    r = Record(s, "/dev/nbd0", "h");
    bool live = s == NBDR_STATUS_MAPPED || s == NBDR_STATUS_MAPPING;
    EXPECT_EQ(mapping::Restart(&r), live) << StatusName(s);
    EXPECT_EQ(r.status, live ? NBDR_STATUS_DEAD : s);
    EXPECT_EQ(r.client, "h");  // kept: only that client may reconnect it
  }
}

}  // namespace
}  // namespace nbdr
