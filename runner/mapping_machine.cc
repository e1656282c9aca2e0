// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// The kernel-mapping state machine of one backstore; see mapping_machine.h.
#include "runner/mapping_machine.h"

#include <cerrno>

namespace nbdr::mapping {

namespace {

// Who is mapping it, for messages.
std::string MappingClient(const BackstoreRecord& r) {
  return r.client.empty() ? "another client" : r.client;
}

std::string ClientName(const std::string& client) {
  return client.empty() ? "an unnamed client" : client;
}

void Clear(BackstoreRecord* r, MapTicket* t) {
  r->status = NBDR_STATUS_CREATED;
  r->device.clear();
  r->client.clear();
  r->owner.clear();
  t->token = 0;
}

std::string IdentityName(const std::string& identity) {
  return identity.empty() ? "a caller without a TLS identity" : "identity " + identity;
}

// Only the identity that began a mapping, or an admin, may act on it.
Status CheckOwner(const BackstoreRecord& r, const MapCaller& caller, const char* verb) {
  if (caller.admin || r.owner == caller.identity) return Status();
  return Status::Error(EACCES, "backstore " + r.ExportName() + " was mapped by " +
                                   IdentityName(r.owner) + "; " + IdentityName(caller.identity) +
                                   " may not " + verb + " it (only that identity or an admin)");
}

}  // namespace

std::string WhereMapped(const BackstoreRecord& r) {
  std::string where = r.device.empty() ? "a client" : r.device;
  if (!r.client.empty()) where += (r.device.empty() ? " (" + r.client + ")" : " of " + r.client);
  return where;
}

Status Begin(BackstoreRecord* r, MapTicket* t, const MapCaller& caller, int64_t now,
             uint64_t token) {
  const std::string name = r->ExportName();
  switch (r->status) {
    case NBDR_STATUS_MAPPED:
      return Status::Error(EBUSY, "backstore " + name + " is already mapped on " + WhereMapped(*r));
    case NBDR_STATUS_MAPPING:
      return Status::Error(EBUSY, "backstore " + name + " is being mapped by " + MappingClient(*r));
    case NBDR_STATUS_DEAD:
      // Its client may still hold the device and reconnect (nbd-clid
      // does): a second client would write the same disk, and a failed
      // map here would end in an unmap that drops this guard.
      return Status::Error(EBUSY, "backstore " + name + " is dead on " + WhereMapped(*r) +
                                      ": its client may still hold it and reconnect; unmap it "
                                      "first (nbd-cli " +
                                      r->type + " unmap " + r->key + ")");
    case NBDR_STATUS_CREATED:
      break;
  }
  r->status = NBDR_STATUS_MAPPING;
  r->device.clear();
  r->client = caller.host;
  r->owner = caller.identity;
  t->since = now;
  t->token = token;
  return Status();
}

Status Confirm(BackstoreRecord* r, const MapTicket& t, const std::string& device,
               const MapCaller& caller, uint64_t token, const std::string& now_iso) {
  const std::string name = r->ExportName();
  const std::string& client = caller.host;
  if (r->status == NBDR_STATUS_MAPPING || r->status == NBDR_STATUS_DEAD)
    if (Status s = CheckOwner(*r, caller, "confirm"); !s.ok()) return s;
  if (r->status == NBDR_STATUS_MAPPING) {
    // Only the map that began it: one whose mapping expired meanwhile
    // holds an older token.
    if (token == 0 || token != t.token)
      return Status::Error(EBUSY, "backstore " + name + " is being mapped by " + MappingClient(*r) +
                                      " (this map's token is not the current one: it took "
                                      "longer than the mapping timeout?)");
  } else if (r->status == NBDR_STATUS_DEAD) {
    // A reconnect: the same client, on the device it had (none recorded
    // when the runner restarted before the map was confirmed). A record
    // from before clients were recorded names none.
    bool same_client = r->client.empty() || r->client == client;
    bool same_device = r->device.empty() || r->device == device;
    if (!same_client || !same_device)
      return Status::Error(EBUSY, "backstore " + name + " is dead on " + WhereMapped(*r) +
                                      ", not on " + device + " of " + ClientName(client));
  } else {
    return Status::Error(
        EINVAL, "backstore " + name + " is " + StatusName(r->status) + ", not being mapped");
  }
  r->status = NBDR_STATUS_MAPPED;
  r->device = device;
  r->client = client;
  r->map_time = now_iso;
  // The token stays until the unmap: a map whose confirmation took effect
  // but whose reply was lost still undoes itself by its token.
  return Status();
}

Status Unmap(BackstoreRecord* r, MapTicket* t, const MapCaller& caller, const UnmapOnly& only) {
  const std::string name = r->ExportName();
  if (r->status == NBDR_STATUS_CREATED)
    return Status::Error(EINVAL, "backstore " + name + " is not mapped");
  if (Status s = CheckOwner(*r, caller, "unmap"); !s.ok()) return s;
  const std::string state = StatusName(r->status);
  if (only.token != 0 && t->token != only.token)
    return Status::Error(EBUSY, "backstore " + name + " is " + state + " on " + WhereMapped(*r) +
                                    " by another map; left as it is");
  if (only.token == 0 && !only.device.empty() &&
      (r->device != only.device || (!r->client.empty() && r->client != caller.host)))
    return Status::Error(EBUSY, "backstore " + name + " is " + state + " on " + WhereMapped(*r) +
                                    ", not on " + only.device + " of " + ClientName(caller.host) +
                                    "; left as it is");
  Clear(r, t);
  return Status();
}

bool ConnectionLost(BackstoreRecord* r) {
  if (r->status != NBDR_STATUS_MAPPED) return false;
  r->status = NBDR_STATUS_DEAD;
  return true;
}

bool Expire(BackstoreRecord* r, MapTicket* t, int64_t now, int timeout_s) {
  if (r->status != NBDR_STATUS_MAPPING || now - t->since < timeout_s) return false;
  Clear(r, t);
  return true;
}

bool Restart(BackstoreRecord* r) {
  if (r->status != NBDR_STATUS_MAPPED && r->status != NBDR_STATUS_MAPPING) return false;
  r->status = NBDR_STATUS_DEAD;
  return true;
}

}  // namespace nbdr::mapping
