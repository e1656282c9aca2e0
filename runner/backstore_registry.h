// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// BackstoreRegistry: every backstore this runner knows, its persistence in
// saveconfig.json, and the exports currently open for NBD clients.
//
// Create and Delete call the handler, then persist; a failure to persist
// rolls the handler call back where it can, so the registry on disk and
// the objects in storage never silently disagree. An export opened for
// serving is shared by every connection to that backstore (so
// CAN_MULTI_CONN is honest) and closed when the last one lets go.
//
// Thread-safe. Lock order: save_mu_, then mu_.
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "runner/backstore.h"
#include "runner/handler_set.h"
#include "runner/mapping_machine.h"
#include "runner/minted_keys.h"
#include "runner/open_export.h"
#include "utils/mutex.h"
#include "utils/status.h"

namespace nbdr {

struct CreateParams {
  std::string type;
  std::string key;
  uint64_t size = 0;
  uint32_t block_size = 512;
  bool readonly = false;
  bool prealloc = false;
  std::vector<std::string> tls_allow;  // the access list it is born with
  std::vector<std::string> runners;    // its runner set (BackstoreRecord::runners)
};

class BackstoreRegistry {
 public:
  // handlers must outlive the registry.
  BackstoreRegistry(const HandlerSet* handlers, std::string saveconfig_path);

  // Reads saveconfig.json. Fails (and changes nothing on disk) when it is
  // unreadable or corrupt.
  Status Load() EXCLUDES(mu_);

  Status Create(const CreateParams& params) EXCLUDES(mu_, save_mu_);
  // Registers a backing object that already exists (made by another tool)
  // without creating it; params.size 0 takes the backend's size, any other
  // must match it. Returns the size.
  // A registered key can be imported again only when its backing object
  // was replaced (the handler's identity differs): the record then takes
  // the new object's size and identity, and this import's block size and
  // read-only flag.
  Expected<uint64_t> Import(const CreateParams& params) EXCLUDES(mu_, save_mu_);
  // Removes the backing object and the entry. Refused while the backstore
  // is mapped or served, and when another object took the registered
  // one's place (that object is not this backstore's to remove). A missing
  // object only drops the entry.
  Status Delete(const std::string& type, const std::string& key) EXCLUDES(mu_, save_mu_);
  // Removes the entry and leaves its backing object alone (another runner
  // of its set serves it, or deletes it): refused when Delete would be.
  Status Forget(const std::string& type, const std::string& key) EXCLUDES(mu_, save_mu_);
  // Replaces the backstore's runner set (replace-node), only when it is
  // still expected (ESTALE otherwise: another change won the race).
  Status SetRunners(const std::string& type, const std::string& key,
                    const std::vector<std::string>& expected,
                    const std::vector<std::string>& runners) EXCLUDES(mu_, save_mu_);
  // High availability: fences the other runners of the backstore's set out
  // of its backing object (the handler's take_over: rbd breaks the image's
  // exclusive lock, and the cluster blocklists its holder). Refused for a
  // backstore without a set, and for a replaced or missing object; ENOTSUP
  // when the handler has no fence of its own.
  // Only for the caller whose map of it this runner holds (mapping, mapped
  // or dead, begun from caller's address), or an admin: a client that
  // may merely open the backstore cannot fence its runners.
  Status TakeOver(const std::string& type, const std::string& key, const MapCaller& caller)
      EXCLUDES(mu_, save_mu_);
  // Sets the backstore's size through its handler and records it; open
  // exports serve the new size at once. A smaller size needs shrink, and a
  // shrink is refused while the backstore is mapped or open. Returns the
  // old and the new size.
  Expected<std::pair<uint64_t, uint64_t>> Resize(const std::string& type, const std::string& key,
                                                 uint64_t size, bool shrink)
      EXCLUDES(mu_, save_mu_);
  // Snapshots (backstore_registry_snapshot.cc; the handler's snapshot_*).
  // Create quiesces an open export around the handler's call and returns
  // how long its writes were held (ms; negative when it was not open);
  // new clients wait while a backstore that is not open is snapshotted.
  // copy lets the handler make a full copy where it cannot snapshot
  // cheaply. Delete refuses while the snapshot is served. Rollback
  // refuses while the backstore is mapped, open, or has a runner set,
  // unless force (then it is quiesced as for create); returns its size
  // after, which the record follows.
  Expected<double> SnapshotCreate(const std::string& type, const std::string& key,
                                  const std::string& snapshot, bool copy) EXCLUDES(mu_, save_mu_);
  Status SnapshotDelete(const std::string& type, const std::string& key,
                        const std::string& snapshot) EXCLUDES(mu_, save_mu_);
  Expected<std::vector<LoadedHandler::Snapshot>> SnapshotList(const std::string& type,
                                                              const std::string& key)
      EXCLUDES(mu_, save_mu_);
  Expected<uint64_t> SnapshotRollback(const std::string& type, const std::string& key,
                                      const std::string& snapshot, bool force)
      EXCLUDES(mu_, save_mu_);
  // Whether export_name's backstore is served by a runner set (high
  // availability): only then does a stall fence its kernel connections.
  bool HasRunnerSet(const std::string& export_name) const EXCLUDES(mu_);
  // Whether record's backing object is still the one registered, asked of
  // its handler now (by its identity, for handlers that keep one).
  struct ObjectCheck {
    enum State { kAsRegistered, kMissing, kReplaced, kUnknown } state = kAsRegistered;
    std::string problem;  // a sentence, unless kAsRegistered
    int code = 0;         // ENOENT, ESTALE, or the handler's error when kUnknown
  };
  ObjectCheck CheckObject(const BackstoreRecord& record) const;
  Expected<BackstoreRecord> Get(const std::string& type, const std::string& key)
      EXCLUDES(mu_, save_mu_);
  // The counts of export_name's clients (export_stats.h), made on first
  // use, and every export's, by export name.
  std::shared_ptr<ExportStats> StatsFor(const std::string& export_name) EXCLUDES(mu_);
  std::vector<std::pair<std::string, std::shared_ptr<ExportStats>>> AllStats() const EXCLUDES(mu_);
  // How many backstores are registered, by type (reads only: no expiry).
  std::map<std::string, size_t> CountByType() const EXCLUDES(mu_);
  // If backstore type/key is open, asks its handler for the object's size
  // now, and follows a resize behind the runner's back (the record, and a
  // grown object's open export).
  void FollowOpenSize(const std::string& type, const std::string& key) EXCLUDES(mu_, save_mu_);
  // Backstores of type (empty: all) in status (nullopt: any), sorted by
  // export name.
  std::vector<BackstoreRecord> List(const std::string& type,
                                    std::optional<BackstoreStatus> status = std::nullopt)
      EXCLUDES(mu_, save_mu_);

  // Kernel mapping, driven by nbd-cli on the client host: the state
  // machine of mapping_machine.h (BeginMap: Begin, ConfirmMapped:
  // Confirm, Unmap, NoteConnectionLost: ConnectionLost; a mapping not
  // confirmed within the mapping timeout, default 60 s, expires while no
  // NBD connection serves it). Each change is persisted, and undone when
  // the write fails. caller names the host and the identity that asks
  // (only the mapping's owner or an admin may act on it); BeginMap's
  // token is unique across restarts.
  void SetMappingTimeout(int seconds) { mapping_timeout_s_ = seconds; }
  struct MapGrant {
    BackstoreRecord record;
    uint64_t token = 0;
  };
  Expected<MapGrant> BeginMap(const std::string& type, const std::string& key,
                              const MapCaller& caller) EXCLUDES(mu_, save_mu_);
  Status ConfirmMapped(const std::string& type, const std::string& key, const std::string& device,
                       const MapCaller& caller, uint64_t token) EXCLUDES(mu_, save_mu_);
  Status Unmap(const std::string& type, const std::string& key, const MapCaller& caller,
               const UnmapOnly& only) EXCLUDES(mu_, save_mu_);
  // An NBD connection to export_name ended without NBD_CMD_DISC: when no
  // other connection serves it any more, a mapped backstore becomes dead
  // (persisted); anything else is left alone.
  void NoteConnectionLost(const std::string& export_name) EXCLUDES(mu_, save_mu_);
  // Whether an NBD connection from peer_host to export_name is one of its
  // kernel mapping's: the backstore is mapping, mapped or dead, and
  // peer_host is the address the map (or its confirmation, or a revive)
  // was called from over TCP, or a loopback address when that call came
  // through the admin socket. Such a connection is never dropped as idle:
  // the kernel keeps it open between requests on purpose. Keyed on what
  // the runner saw, never on a name the peer sends.
  bool IsMappingPeer(const std::string& export_name, const std::string& peer_host) const
      EXCLUDES(mu_);
  // Grows each time a mapping's address (what IsMappingPeer compares) is
  // set: a connection found not to be a mapping's asks again only after
  // it grew, so the data path pays one atomic load, not a lookup.
  uint64_t mapper_changes() const { return mapper_changes_.load(std::memory_order_acquire); }

  // Opens (or shares the already open) export for an NBD client whose TLS
  // identity is tls_identity ("" without one): EACCES when the
  // backstore's access list does not name it. Opens of different exports
  // run at once; a second client of an export being opened waits for
  // that open and shares it. TYPE/KEY@NAME opens snapshot NAME of KEY,
  // read-only, for clients that may open KEY.
  Expected<std::shared_ptr<OpenExport>> OpenForServing(const std::string& export_name,
                                                       const std::string& tls_identity)
      EXCLUDES(mu_);
  // The record an NBD client's export name stands for: a backstore's, or
  // for TYPE/KEY@NAME a read-only snapshot NAME of backstore KEY (its
  // record with snapshot set; whether the snapshot exists, the open says).
  Expected<BackstoreRecord> ServedRecord(const std::string& export_name) EXCLUDES(mu_);
  // Whether a client with this TLS identity may open the backstore: it is
  // on the access list, or the list is empty; and a key minted for one
  // backstore opens that one only.
  bool MayOpen(const BackstoreRecord& record, const std::string& tls_identity) const;

  // Who may open a backstore over NBD (BackstoreRecord::tls_allow;
  // backstore_access.cc): shows the list, adds or removes identities,
  // empties it (open to every client), or turns auth on (mints a PSK
  // identity and key, puts the identity on the list, returns psktool's
  // line once) or off (takes its minted identities off the list, forgets
  // their keys); persists the result. A deny that would empty the list is
  // refused (EPERM): opening a backstore to everyone takes kOpen.
  // Connections already open stay open.
  enum class AccessChange { kShow, kAllow, kDeny, kOpen, kAuthEnable, kAuthDisable };
  struct AccessResult {
    std::vector<std::string> allowed;  // the list after the change
    std::string minted_psk_line;       // kAuthEnable: "IDENTITY:HEXKEY"
  };
  Expected<AccessResult> ChangeAccess(const std::string& type, const std::string& key,
                                      AccessChange change,
                                      const std::vector<std::string>& identities)
      EXCLUDES(mu_, save_mu_);
  // Creates a backstore with auth in one step: its key is minted first and
  // its access list holds the minted identity from the moment it exists,
  // so no client can open it in between. Its size, list and key.
  struct CreatedWithAuth {
    uint64_t size = 0;
    AccessResult access;
  };
  Expected<CreatedWithAuth> CreateWithAuth(CreateParams params) EXCLUDES(mu_, save_mu_);
  // The keys minted for auth (must outlive the registry); null, as when
  // TLS is off: auth is refused.
  void SetMintedKeys(MintedKeys* minted) { minted_ = minted; }
  // Number of exports open right now.
  size_t OpenCount() const EXCLUDES(mu_);

  // A handler-not-loaded error for type, or OK.
  Status CheckHandler(const std::string& type) const;

 private:
  Expected<uint64_t> Register(const CreateParams& p,
                              const std::function<Expected<uint64_t>()>& make, bool created)
      EXCLUDES(mu_, save_mu_);
  Expected<uint64_t> Readopt(const CreateParams& p, const BackstoreRecord& existing,
                             const std::function<Expected<uint64_t>()>& inspect)
      EXCLUDES(mu_, save_mu_);
  Status Unregister(const std::string& type, const std::string& key, bool remove_object)
      EXCLUDES(mu_, save_mu_);
  // Forget's part once the entry is marked busy: drops it and saves, or
  // puts it back when saveconfig.json cannot be written.
  Status ForgetEntry(const std::string& name) EXCLUDES(mu_, save_mu_);
  // Resize's checks; marks the entry as being resized (Delete, Forget and
  // another resize are refused; opens are refused during a shrink) and
  // tells its size.
  Status BeginResize(const std::string& name, uint64_t size, bool shrink, uint64_t* old_size)
      EXCLUDES(mu_);
  // The object of record turned out to be size at an open (resized
  // behind the runner's back): the record follows, logged.
  // grow: an open export of it that serves the new size from now on.
  void FollowBackendSize(const BackstoreRecord& record, uint64_t size, OpenExport* grow = nullptr)
      EXCLUDES(mu_, save_mu_);
  // The same for an open export, asking its handler the object's size now.
  void FollowOpenSize(const BackstoreRecord& record, OpenExport* open) EXCLUDES(mu_, save_mu_);
  // Ends what BeginResize or BeginObjectChange began: the entry may
  // change again, and clients waiting to open it go on.
  void EndObjectChange(const std::string& name) EXCLUDES(mu_);
  // Marks the entry as changing (what: "snapshotted", ...; refused while it
  // is busy or another change runs) and returns its open export (after an
  // open under way ended), or null: then new opens wait for the change.
  Expected<std::shared_ptr<OpenExport>> BeginObjectChange(const std::string& name, const char* what,
                                                          BackstoreRecord* record) EXCLUDES(mu_);
  // Runs change with open quiesced (writes held, those in flight done,
  // flushed; held_ms says how long the writes were held), or directly
  // when open is null.
  static Status Quiesced(OpenExport* open, double* held_ms,
                         const std::function<Status(void* handle)>& change);
  // A copy snapshot of open, taken while its writes go on (handlers with
  // snapshot_copy_ranges): see backstore_registry_snapshot.cc.
  static Status CopyWhileWriting(const LoadedHandler& h, OpenExport* open, const std::string& key,
                                 const std::string& snapshot, double* held_ms);
  // The handler of type, if it takes snapshots; validates key and snapshot.
  Expected<const LoadedHandler*> SnapshotHandler(const std::string& type, const std::string& key,
                                                 const std::string* snapshot);
  // EEXIST when KEY@NAME is a registered backstore, not snapshot NAME.
  Status RegisteredAsBackstoreLocked(const std::string& type, const std::string& key,
                                     const std::string& snapshot) const REQUIRES(mu_);
  // EIO, saying how to complete it, when a rollback of record's backstore
  // did not complete (BackstoreRecord::rolling_back): it is not served.
  static Status NotMidRollback(const BackstoreRecord& record);
  // ENOENT unless key has snapshot.
  static Status SnapshotMustExist(const LoadedHandler& h, const std::string& key,
                                  const std::string& snapshot);
  // Records (saved) that a rollback to snapshot begins ("": that none
  // does): see BackstoreRecord::rolling_back.
  Status SetRollingBack(const std::string& type, const std::string& key,
                        const std::string& snapshot) EXCLUDES(mu_, save_mu_);
  static Status RefuseUnforcedRollback(const std::string& name, const BackstoreRecord& record,
                                       const OpenExport* open);
  // What is open of name serves size from now on.
  void SetOpenSize(const std::string& name, uint64_t size) EXCLUDES(mu_);
  Status SaveSize(const std::string& type, const std::string& key, uint64_t size)
      EXCLUDES(mu_, save_mu_);
  // Resize's two ways, between BeginResize and EndResize.
  Status Shrink(const std::string& type, const std::string& key, uint64_t old_size, uint64_t size)
      EXCLUDES(mu_, save_mu_);
  Status Grow(const std::string& type, const std::string& key, uint64_t old_size, uint64_t size)
      EXCLUDES(mu_, save_mu_);
  static std::string CurrentIdentity(const LoadedHandler* h, const std::string& key);
  // The registered backstores of type, other than except, whose record
  // has this identity: by export name.
  std::map<std::string, BackstoreRecord> HoldersLocked(const std::string& type,
                                                       const std::string& identity,
                                                       const std::string& except) const
      REQUIRES(mu_);
  // The export name of a registered backstore of type, other than except
  // and those in stale, whose object has this identity (another path to
  // the same object); "" when there is none.
  std::string RegisteredAs(const std::string& type, const std::string& identity,
                           const std::string& except, const std::set<std::string>& stale) const
      REQUIRES(mu_);
  // The export names of backstores of type (other than except) whose record
  // has this identity but whose object is gone or replaced (asked of the
  // handler now): a record that no longer names the object.
  std::set<std::string> StaleHolders(const std::string& type, const std::string& identity,
                                     const std::string& except) const EXCLUDES(mu_);
  Expected<std::vector<std::string>> EditAccessList(const std::string& type, const std::string& key,
                                                    AccessChange change,
                                                    const std::vector<std::string>& identities)
      EXCLUDES(mu_, save_mu_);
  // Forgets the keys minted for export_name (after a delete, or auth off).
  void ForgetMintedKeys(const std::string& export_name);
  // The handler's part of OpenForServing: checks the object's identity and
  // opens it.
  Expected<std::shared_ptr<OpenExport>> OpenBackend(const std::string& export_name,
                                                    const BackstoreRecord& record) const;
  // What serving an export name uses: a backstore's entry and its
  // sharing, or (a snapshot) the backstore's entry, the snapshot's sharing
  // and a record with snapshot set. None when there is no such export.
  struct Entry;
  struct ServingSlot {
    Entry* entry;
    ExportSharing* sharing;
    BackstoreRecord record;
  };
  std::optional<ServingSlot> FindServingLocked(const std::string& export_name) REQUIRES(mu_);
  // name's entry, if its object may change now: it exists, and no create,
  // delete or other change runs on it (EBUSY).
  Expected<Entry*> ChangeableEntryLocked(const std::string& name) REQUIRES(mu_);
  // Whether an open of slot's export waits: a shrink or rollback of the
  // backstore runs, or (a snapshot) any change of its backstore.
  bool MustWaitToOpen(const ServingSlot& slot) const REQUIRES(mu_);
  // Why a snapshot of backstore name is in use ("" when none is): the
  // backstore is then not unregistered.
  std::string SnapshotInUseLocked(const std::string& name) const REQUIRES(mu_);
  struct Entry {
    BackstoreRecord record;
    MapTicket map;          // the map in progress or done (see mapping_machine.h)
    bool busy = false;      // a create, import or delete is running on it
    bool creating = false;  // reserved by Register, not saved yet: not shown or served
    // A change of its object under way ("resized"): delete, forget and
    // other changes are refused meanwhile (EBUSY); null when none.
    const char* changing = nullptr;
    bool no_opens = false;  // ... and it keeps new opens out (a shrink)
    ExportSharing sharing;  // open for NBD clients: Delete and re-import refuse
    // Where the mapping's map or confirm call came from ("" for the admin
    // socket); not saved: until a revive after a restart sets it again,
    // no connection counts as the mapping's.
    std::optional<std::string> mapper_address;
  };
  // Writes saveconfig.json: every entry but those Register has not saved
  // yet, except the one named also (the create or import being saved).
  Status SaveLocked(const std::string& also = "") REQUIRES(save_mu_) EXCLUDES(mu_);
  // Moves mappings that were never confirmed back to created; true when
  // it changed anything.
  bool ExpireMappingsLocked() REQUIRES(mu_);
  // ExpireMappingsLocked, and persists what it changed. For the read
  // paths (info, list, NBD_OPT_LIST): while another saveconfig.json
  // write runs it does nothing rather than wait, so a stalled state
  // directory never holds a read; the next call or change expires them.
  void ExpireMappings() EXCLUDES(mu_, save_mu_);
  // Applies change to the entry under mu_, then persists; on a failed
  // write the entry is restored.
  template <typename Fn>
  Status UpdateAndSave(const std::string& type, const std::string& key, Fn change)
      EXCLUDES(mu_, save_mu_);

  std::atomic<uint64_t> mapper_changes_{0};
  const HandlerSet* const handlers_;
  const std::string path_;
  MintedKeys* minted_ = nullptr;            // set before serving
  std::atomic<int> mapping_timeout_s_{60};  // SIGHUP may change it while RPCs run

  Mutex save_mu_;  // serialises saveconfig.json writes
  mutable Mutex mu_;
  std::condition_variable open_done_;                     // an OpenForServing call finished
  std::map<std::string, Entry> entries_ GUARDED_BY(mu_);  // by export name
  // Snapshots open for NBD clients, or being opened, by export name
  // (TYPE/KEY@NAME); others are dropped as they are found.
  std::map<std::string, ExportSharing> snapshot_sharing_ GUARDED_BY(mu_);
  // What the clients of each export did (backstore_registry_stats.cc), by
  // export name: its snapshots' too; dropped with the backstore.
  std::map<std::string, std::shared_ptr<ExportStats>> stats_ GUARDED_BY(mu_);
  void ForgetStatsLocked(const std::string& name) REQUIRES(mu_);
  uint64_t last_map_token_ GUARDED_BY(mu_);  // starts at the clock: no token repeats a restart's
};

}  // namespace nbdr
