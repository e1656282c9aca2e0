// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// Unit tests of the kernel-mapping state machine (runner/mapping_machine.h):
// every transition from every state, table-driven, and the ownership
// rules (tokens, client and device) that keep two hosts off one disk, and
// the owner identity that keeps one client off another's mapping.
#include "runner/mapping_machine.h"

#include <gtest/gtest.h>

#include <cerrno>

namespace nbdr {
namespace {

BackstoreRecord Record(BackstoreStatus status, const std::string& device = "",
                       const std::string& client = "", const std::string& owner = "psk:a") {
  BackstoreRecord r;
  r.type = "file";
  r.key = "a.img";
  r.status = status;
  r.device = device;
  r.client = client;
  r.owner = owner;
  return r;
}

// Host h with identity psk:a (the owner of Record's records), another
// identity on the same host, and an admin.
MapCaller Owner(const std::string& host = "h") { return {host, "psk:a", false, ""}; }
MapCaller Stranger(const std::string& host = "h") { return {host, "psk:b", false, ""}; }
MapCaller Admin(const std::string& host = "h") { return {host, "psk:admin", true, ""}; }

const BackstoreStatus kAll[] = {NBDR_STATUS_CREATED, NBDR_STATUS_MAPPING, NBDR_STATUS_MAPPED,
                                NBDR_STATUS_DEAD};

TEST(MappingMachine, BeginOnlyFromCreated) {
  for (BackstoreStatus s : kAll) {
    BackstoreRecord r = Record(s, "/dev/nbd3", "host-a");
    MapTicket t{1, 7};
    Status st = mapping::Begin(&r, &t, Stranger("host-b"), 100, 8);
    if (s == NBDR_STATUS_CREATED) {
      ASSERT_TRUE(st.ok()) << st.message();
      EXPECT_EQ(r.status, NBDR_STATUS_MAPPING);
      EXPECT_EQ(r.client, "host-b");
      EXPECT_EQ(r.owner, "psk:b");
      EXPECT_EQ(r.device, "");
      EXPECT_EQ(t.token, 8u);
      EXPECT_EQ(t.since, 100);
    } else {
      EXPECT_EQ(st.code(), EBUSY) << StatusName(s);
      EXPECT_EQ(r.status, s);  // unchanged
      EXPECT_EQ(r.client, "host-a");
      EXPECT_EQ(r.owner, "psk:a");
      EXPECT_EQ(t.token, 7u);
    }
  }
}

struct ConfirmCase {
  const char* what;
  BackstoreRecord before;
  uint64_t ticket_token;
  std::string device;
  MapCaller caller;
  uint64_t token;
  int want;  // errno, 0: mapped
};

TEST(MappingMachine, ConfirmTable) {
  const ConfirmCase cases[] = {
      {"the map that began it", Record(NBDR_STATUS_MAPPING, "", "h"), 5, "/dev/nbd0", Owner(), 5,
       0},
      {"a map whose token expired", Record(NBDR_STATUS_MAPPING, "", "h"), 6, "/dev/nbd0", Owner(),
       5, EBUSY},
      {"no token for a mapping", Record(NBDR_STATUS_MAPPING, "", "h"), 5, "/dev/nbd0", Owner(), 0,
       EBUSY},
      {"reconnect: same client and device", Record(NBDR_STATUS_DEAD, "/dev/nbd0", "h"), 0,
       "/dev/nbd0", Owner(), 0, 0},
      {"reconnect after a restart before confirm", Record(NBDR_STATUS_DEAD, "", "h"), 0,
       "/dev/nbd2", Owner(), 0, 0},
      {"reconnect of an old record (no client)", Record(NBDR_STATUS_DEAD, "/dev/nbd0", ""), 0,
       "/dev/nbd0", Owner(), 0, 0},
      {"dead, another client", Record(NBDR_STATUS_DEAD, "/dev/nbd0", "h"), 0, "/dev/nbd0",
       Owner("x"), 0, EBUSY},
      {"dead, another device", Record(NBDR_STATUS_DEAD, "/dev/nbd0", "h"), 0, "/dev/nbd1", Owner(),
       0, EBUSY},
      {"nothing being mapped", Record(NBDR_STATUS_CREATED), 0, "/dev/nbd0", Owner(), 0, EINVAL},
      {"another identity's mapping, with its token", Record(NBDR_STATUS_MAPPING, "", "h"), 5,
       "/dev/nbd0", Stranger(), 5, EACCES},
      {"another identity reviving a dead mapping", Record(NBDR_STATUS_DEAD, "/dev/nbd0", "h"), 0,
       "/dev/nbd0", Stranger(), 0, EACCES},
      {"an admin reviving another's dead mapping", Record(NBDR_STATUS_DEAD, "/dev/nbd0", "h"), 0,
       "/dev/nbd0", Admin(), 0, 0},
      {"an unowned mapping, by an identity", Record(NBDR_STATUS_DEAD, "/dev/nbd0", "h", ""), 0,
       "/dev/nbd0", Owner(), 0, EACCES},
      {"already mapped", Record(NBDR_STATUS_MAPPED, "/dev/nbd0", "h"), 5, "/dev/nbd0", Owner(), 5,
       EINVAL},
  };
  for (const ConfirmCase& c : cases) {
    BackstoreRecord r = c.before;
    MapTicket t{0, c.ticket_token};
    Status st = mapping::Confirm(&r, t, c.device, c.caller, c.token, "2026-12-06T13:00:00Z");
    EXPECT_EQ(st.code(), c.want) << c.what << ": " << st.message();
    if (c.want == 0) {
      EXPECT_EQ(r.status, NBDR_STATUS_MAPPED) << c.what;
      EXPECT_EQ(r.device, c.device) << c.what;
      EXPECT_EQ(r.client, c.caller.host) << c.what;
      EXPECT_EQ(r.owner, c.before.owner) << c.what;  // an admin's revival keeps the owner
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
  MapCaller caller;
  UnmapOnly only;
  int want;
};

TEST(MappingMachine, UnmapTable) {
  const UnmapCase cases[] = {
      {"not mapped", Record(NBDR_STATUS_CREATED), 0, Owner(), {}, EINVAL},
      {"any mapping, no limit", Record(NBDR_STATUS_MAPPED, "/dev/nbd0", "h"), 3, Owner(), {}, 0},
      {"a dead mapping, no limit", Record(NBDR_STATUS_DEAD, "/dev/nbd0", "h"), 0, Owner(), {}, 0},
      {"by its own token", Record(NBDR_STATUS_MAPPING, "", "h"), 3, Owner(), {"", 3}, 0},
      {"by another map's token", Record(NBDR_STATUS_MAPPING, "", "h"), 4, Owner(), {"", 3}, EBUSY},
      {"by device and client",
       Record(NBDR_STATUS_MAPPED, "/dev/nbd0", "h"),
       0,
       Owner(),
       {"/dev/nbd0", 0},
       0},
      {"another device",
       Record(NBDR_STATUS_MAPPED, "/dev/nbd0", "h"),
       0,
       Owner(),
       {"/dev/nbd1", 0},
       EBUSY},
      {"another client's device of that name",
       Record(NBDR_STATUS_MAPPED, "/dev/nbd0", "h"),
       0,
       Owner("x"),
       {"/dev/nbd0", 0},
       EBUSY},
      {"a record of no client, by device",
       Record(NBDR_STATUS_DEAD, "/dev/nbd0", ""),
       0,
       Owner("x"),
       {"/dev/nbd0", 0},
       0},
      {"another identity naming the owner's host and device",
       Record(NBDR_STATUS_MAPPED, "/dev/nbd0", "h"),
       3,
       Stranger(),
       {"/dev/nbd0", 0},
       EACCES},
      {"another identity with the map's token",
       Record(NBDR_STATUS_MAPPED, "/dev/nbd0", "h"),
       3,
       Stranger(),
       {"", 3},
       EACCES},
      {"another identity, no limit",
       Record(NBDR_STATUS_DEAD, "/dev/nbd0", "h"),
       0,
       Stranger(),
       {},
       EACCES},
      {"an admin, any identity's", Record(NBDR_STATUS_MAPPED, "/dev/nbd0", "h"), 0, Admin(), {}, 0},
      {"a caller without identity, an unowned mapping",
       Record(NBDR_STATUS_MAPPED, "/dev/nbd0", "h", ""),
       0,
       {"h", "", false, ""},
       {"/dev/nbd0", 0},
       0},
  };
  for (const UnmapCase& c : cases) {
    BackstoreRecord r = c.before;
    MapTicket t{0, c.ticket_token};
    Status st = mapping::Unmap(&r, &t, c.caller, c.only);
    EXPECT_EQ(st.code(), c.want) << c.what << ": " << st.message();
    if (c.want == 0) {
      EXPECT_EQ(r.status, NBDR_STATUS_CREATED) << c.what;
      EXPECT_EQ(r.device, "") << c.what;
      EXPECT_EQ(r.client, "") << c.what;
      EXPECT_EQ(r.owner, "") << c.what;
      EXPECT_EQ(t.token, 0u) << c.what;
    } else {
      EXPECT_EQ(r.status, c.before.status) << c.what;
      EXPECT_EQ(r.owner, c.before.owner) << c.what;
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
    EXPECT_EQ(r.owner, "psk:a");
  }
}

}  // namespace
}  // namespace nbdr
