// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// The rbd handler (librbd_handler.so): backstores are Ceph RBD images,
// reached through librados/librbd (no kernel rbd module).
//
// Key POOL/IMAGE or POOL/NAMESPACE/IMAGE. One rados cluster connection per
// runner, made on first use (so the runner starts while the cluster is
// down) and kept until unload; one ioctx per pool and namespace; one image
// handle per served backstore, shared by all its NBD connections, so
// CAN_MULTI_CONN is honest. When the cluster blocklists the connection
// (another client broke an exclusive lock, or an operator did), the images
// open through it fail with EIO until their clients reconnect, and new
// work goes through a new connection; the old one is shut down when its
// last image closes.
//
// I/O: read, write, flush, discard and write-zeroes are rbd_aio_* calls
// completing on librbd's threads. FUA adds an rbd_aio_flush; extents
// (rbd_diff_iterate2, synchronous) run on a small worker pool, so submit
// never blocks. rados_osd_op_timeout and rados_mon_op_timeout
// (ceph-op-timeout) turn a dead or frozen OSD into EIO instead of a hang.
//
// Thread-safety: every callback may be called from any runner thread.
#include <rados/librados.h>
#include <rbd/librbd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <future>
#include <iterator>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>

#include "handlers/common/handler_util.h"
#include "handlers/rbd/rbd_backstore.h"
#include "nbd-runner/handler.h"

namespace {

using handler_util::SetErr;
using namespace rbd_backstore;  // NOLINT: this handler's own parts

constexpr uint64_t kImageFeatures = RBD_FEATURE_LAYERING | RBD_FEATURE_EXCLUSIVE_LOCK |
                                    RBD_FEATURE_OBJECT_MAP | RBD_FEATURE_FAST_DIFF |
                                    RBD_FEATURE_DEEP_FLATTEN;

void OnHeaderUpdate(void* arg) { static_cast<RbdExport*>(arg)->header_changed = true; }

bool ParseKey(const char* key, ImageRef* ref, char* err, size_t errlen) {
  std::string k = key;
  size_t a = k.find('/');
  size_t b = a == std::string::npos ? a : k.find('/', a + 1);
  size_t c = b == std::string::npos ? b : k.find('/', b + 1);
  if (a == std::string::npos || c != std::string::npos) {
    SetErr(err, errlen, "key '%s' must be POOL/IMAGE or POOL/NAMESPACE/IMAGE", key);
    return false;
  }
  ref->pool = k.substr(0, a);
  if (b == std::string::npos) {
    ref->image = k.substr(a + 1);
  } else {
    ref->ns = k.substr(a + 1, b - a - 1);
    ref->image = k.substr(b + 1);
  }
  if (ref->pool.empty() || ref->image.empty() || (b != std::string::npos && ref->ns.empty())) {
    SetErr(err, errlen, "key '%s' must be POOL/IMAGE or POOL/NAMESPACE/IMAGE", key);
    return false;
  }
  return true;
}

std::string Describe(const ImageRef& r) {
  return r.ns.empty() ? r.pool + "/" + r.image : r.pool + "/" + r.ns + "/" + r.image;
}

// Connects to the cluster on first use, and again after the cluster
// blocklisted the connection. Caller holds h->mu.
int ConnectLocked(RbdHandler* h, char* err, size_t errlen) {
  if (h->conn && !h->conn->blocklisted) return 0;
  rados_t raw = nullptr;
  int rc = rados_create(&raw, h->client_id.empty() ? nullptr : h->client_id.c_str());
  if (rc < 0) {
    SetErr(err, errlen, "rados_create: %s", strerror(-rc));
    return -rc;
  }
  RadosCluster cluster(raw);  // shut down on every failure below
  rc = rados_conf_read_file(cluster.get(), h->conf_file.empty() ? nullptr : h->conf_file.c_str());
  if (rc < 0) {
    SetErr(err, errlen, "cannot read Ceph configuration %s: %s",
           h->conf_file.empty() ? "(default search path)" : h->conf_file.c_str(), strerror(-rc));
    return -rc;
  }
  std::string timeout = std::to_string(h->op_timeout_s);
  const std::pair<const char*, std::string> settings[] = {
      {"rados_osd_op_timeout", timeout},
      {"rados_mon_op_timeout", timeout},
      {"client_mount_timeout", timeout},
      {"keyring", h->keyring},
      // No librbd cache: a write is acknowledged once the OSDs have it,
      // never from this process's memory. A runner that dies (or is
      // fenced) then takes no acknowledged write with it; a kernel
      // mapping that reconnects or fails over sends its next flush to
      // another process, which could not flush what this one held.
      {"rbd_cache", "false"},
  };
  for (const auto& [name, value] : settings) {
    if (value.empty()) continue;
    if ((rc = rados_conf_set(cluster.get(), name, value.c_str())) < 0) {
      SetErr(err, errlen, "Ceph option %s=%s: %s", name, value.c_str(), strerror(-rc));
      return -rc;
    }
  }
  if ((rc = rados_connect(cluster.get())) < 0) {
    int e = -rc;
    const char* client = h->client_id.empty() ? "admin" : h->client_id.c_str();
    if (e == EACCES || e == EPERM) {
      SetErr(err, errlen,
             "Ceph cluster refused client '%s': permission denied (check ceph-id and "
             "ceph-keyring)",
             client);
    } else if (e == ENOENT) {  // librados found no key for the client
      SetErr(
          err, errlen, "no keyring with a key for Ceph client '%s' (ceph-keyring %s): %s", client,
          h->keyring.empty() ? "unset, so where the Ceph configuration says" : h->keyring.c_str(),
          strerror(e));
      e = EACCES;
    } else if (e == EOPNOTSUPP) {  // no authentication method both sides take
      SetErr(err, errlen,
             "Ceph cluster refused client '%s': its authentication settings and "
             "the cluster's do not match (check the auth options of configuration %s)",
             client, h->conf_file.empty() ? "default" : h->conf_file.c_str());
      e = EACCES;
    } else {
      SetErr(err, errlen, "Ceph cluster unreachable (configuration %s): %s",
             h->conf_file.empty() ? "default" : h->conf_file.c_str(), strerror(e));
    }
    return e == ETIMEDOUT || e == ENOTCONN ? EHOSTUNREACH : e;
  }
  const bool again = h->conn != nullptr;
  h->conn = std::make_shared<ClusterConnection>();  // the old one lives on in its images
  h->conn->cluster = cluster.release();
  handler_util::Log(h->svc, again ? NBDR_LOG_WARNING : NBDR_LOG_INFO, "",
                    "%s the Ceph cluster (configuration %s)",
                    again ? "blocklisted by the cluster; connected again to" : "connected to",
                    h->conf_file.empty() ? "default" : h->conf_file.c_str());
  return 0;
}

// The ioctx of ref's pool and namespace, connecting on first use; *conn
// is the connection it belongs to.
int GetIoctx(RbdHandler* h, const ImageRef& ref, rados_ioctx_t* out,
             std::shared_ptr<ClusterConnection>* conn, char* err, size_t errlen) {
  nbdr::MutexLock l(&h->mu);
  if (int rc = ConnectLocked(h, err, errlen)) return rc;
  *conn = h->conn;
  auto id = std::make_pair(ref.pool, ref.ns);
  if (auto it = h->conn->ioctxs.find(id); it != h->conn->ioctxs.end()) {
    *out = it->second;
    return 0;
  }
  rados_ioctx_t io = nullptr;
  int rc = rados_ioctx_create(h->conn->cluster, ref.pool.c_str(), &io);
  if (rc < 0) {
    if (rc == -ENOENT)
      SetErr(err, errlen, "Ceph pool '%s' does not exist", ref.pool.c_str());
    else
      SetErr(err, errlen, "Ceph pool '%s': %s", ref.pool.c_str(), strerror(-rc));
    return -rc;
  }
  if (!ref.ns.empty()) rados_ioctx_set_namespace(io, ref.ns.c_str());
  // On a full pool librados holds every write until the pool has room
  // again (or ceph-op-timeout gives EIO). With ceph-full-try the OSD
  // answers instead: a write that needs space fails at once with ENOSPC
  // (EDQUOT over a quota); overwrites in place, trims, deletes and the
  // image's watch succeed. Opt-in: the OSD then lets those through even
  // past its fail-safe full ratio.
  if (h->full_try) rados_set_pool_full_try(io);
  h->conn->ioctxs[id] = io;
  *out = io;
  return 0;
}

// Runs *result = call(ioctx, connection) on ref's pool; when the cluster
// answers that it blocklisted the connection, connects again and runs it
// once more. Returns 0, or a positive errno (err set) when there is no
// ioctx to call with.
template <typename Call>
int WithIoctx(RbdHandler* h, const ImageRef& ref, int* result, char* err, size_t errlen,
              Call call) {
  for (int attempt = 0;; attempt++) {
    rados_ioctx_t io;
    std::shared_ptr<ClusterConnection> conn;
    if (int rc = GetIoctx(h, ref, &io, &conn, err, errlen)) return rc;
    *result = call(io, conn);
    if (*result != -kBlocklisted || attempt == 1) return 0;
    conn->blocklisted = true;
  }
}

}  // namespace

namespace rbd_backstore {

// An operator sentence for a failed librbd call (rc < 0) on ref.
int ImageError(const char* what, const ImageRef& ref, int rc, char* err, size_t errlen) {
  int e = -rc;
  std::string name = Describe(ref);
  switch (e) {
    case EEXIST:
      SetErr(err, errlen, "rbd image %s already exists", name.c_str());
      break;
    case ENOENT:
      SetErr(err, errlen, "rbd image %s does not exist", name.c_str());
      break;
    case EACCES:
    case EPERM:
      SetErr(err, errlen, "%s rbd image %s: permission denied", what, name.c_str());
      break;
    case EBUSY:
      SetErr(err, errlen, "%s rbd image %s: it is still open elsewhere (watchers)", what,
             name.c_str());
      break;
    case ENOTEMPTY:
      SetErr(err, errlen, "%s rbd image %s: it has snapshots", what, name.c_str());
      break;
    case ETIMEDOUT:
      SetErr(err, errlen, "%s rbd image %s: the cluster did not answer in time", what,
             name.c_str());
      break;
    case ENOSPC:
      SetErr(err, errlen, "%s rbd image %s: no space left, the Ceph pool '%s' is full", what,
             name.c_str(), ref.pool.c_str());
      break;
    case EDQUOT:
      SetErr(err, errlen, "%s rbd image %s: the Ceph pool '%s' is over its quota", what,
             name.c_str(), ref.pool.c_str());
      break;
    default:
      SetErr(err, errlen, "%s rbd image %s: %s", what, name.c_str(), strerror(e));
  }
  return e;
}

}  // namespace rbd_backstore

namespace {

// ---- handler callbacks --------------------------------------------------

int RbdLoad(const nbdr_services* svc, void** state, char* err, size_t errlen) {
  auto h = std::make_unique<RbdHandler>();
  h->svc = svc;
  auto opt = [svc](const char* name) -> std::string {
    const char* v = svc->get_option(svc->ctx, name);
    return v ? v : "";
  };
  h->conf_file = opt("ceph-conf");
  h->client_id = opt("ceph-id");
  h->keyring = opt("ceph-keyring");
  if (h->client_id.rfind("client.", 0) == 0) h->client_id = h->client_id.substr(7);
  h->op_timeout_s = handler_util::ParseIntOption(svc->get_option(svc->ctx, "ceph-op-timeout"),
                                                 kDefaultOpTimeoutSeconds, 1, 3600);
  if (h->op_timeout_s < 0) {
    SetErr(err, errlen, "ceph-op-timeout: '%s' is not a number of seconds from 1 to 3600",
           opt("ceph-op-timeout").c_str());
    return EINVAL;
  }
  if (std::string v = opt("ceph-full-try"); v == "on") {
    h->full_try = true;
  } else if (!v.empty() && v != "off") {
    SetErr(err, errlen, "ceph-full-try: '%s' is not on or off", v.c_str());
    return EINVAL;
  }
  h->pool = std::make_unique<handler_util::WorkerPool>(2);
  handler_util::Log(svc, NBDR_LOG_INFO, "", "Ceph configuration %s, client %s, op timeout %ld s%s",
                    h->conf_file.empty() ? "default" : h->conf_file.c_str(),
                    h->client_id.empty() ? "admin" : h->client_id.c_str(), h->op_timeout_s,
                    h->full_try ? ", full try on" : "");
  *state = h.release();
  return 0;
}

void RbdUnload(void* state) {
  auto* h = static_cast<RbdHandler*>(state);
  h->pool.reset();
  // rados_shutdown waits for the monitors; with the cluster gone it can
  // take minutes. The runner is stopping, so wait a bounded time and then
  // leave the connection to the process exit.
  auto done = std::make_shared<std::promise<void>>();
  std::future<void> finished = done->get_future();
  std::thread shutdown([h, done] {
    h->conn.reset();
    done->set_value();
  });
  auto limit = std::chrono::seconds(h->op_timeout_s + 5);
  if (finished.wait_for(limit) == std::future_status::timeout) {
    handler_util::Log(h->svc, NBDR_LOG_WARNING, "",
                      "the Ceph cluster did not answer the disconnect within %lld s; not waiting",
                      static_cast<long long>(limit.count()));
    // h stays alive for the thread, and so must this library's code,
    // which the runner unloads next.
    handler_util::KeepLoadedUntilExit(reinterpret_cast<void*>(&RbdUnload));
    shutdown.detach();  // the process is exiting
    return;
  }
  // Joined, not detached: the thread must leave this library's code before
  // the runner unloads it.
  shutdown.join();
  delete h;
}

int RbdCreate(void* state, const char* key, const nbdr_create_params* p, char* err, size_t errlen) {
  auto* h = static_cast<RbdHandler*>(state);
  ImageRef ref;
  if (!ParseKey(key, &ref, err, errlen)) return EINVAL;
  if (p->prealloc) {
    SetErr(err, errlen, "rbd images are thin-provisioned; prealloc is not supported");
    return ENOTSUP;
  }
  int rc = 0;
  if (int e = WithIoctx(h, ref, &rc, err, errlen, [&](rados_ioctx_t io, const auto&) {
        rbd_image_options_t opts;
        rbd_image_options_create(&opts);
        rbd_image_options_set_uint64(opts, RBD_IMAGE_OPTION_FEATURES, kImageFeatures);
        int r = rbd_create4(io, ref.image.c_str(), p->size, opts);
        rbd_image_options_destroy(opts);
        return r;
      }))
    return e;
  if (rc == -ENOENT && !ref.ns.empty()) {
    SetErr(err, errlen, "rbd namespace '%s' does not exist in pool '%s'", ref.ns.c_str(),
           ref.pool.c_str());
    return ENOENT;
  }
  if (rc < 0) return ImageError("create", ref, rc, err, errlen);
  handler_util::Log(h->svc, NBDR_LOG_INFO, key, "created %llu bytes",
                    static_cast<unsigned long long>(p->size));
  return 0;
}

int RbdRemove(void* state, const char* key, char* err, size_t errlen) {
  auto* h = static_cast<RbdHandler*>(state);
  ImageRef ref;
  if (!ParseKey(key, &ref, err, errlen)) return EINVAL;
  int rc = 0;
  if (int e = WithIoctx(h, ref, &rc, err, errlen, [&](rados_ioctx_t io, const auto&) {
        return rbd_remove(io, ref.image.c_str());
      }))
    return e;
  if (rc < 0) return ImageError("delete", ref, rc, err, errlen);
  return 0;
}

}  // namespace

namespace rbd_backstore {

int OpenImage(RbdHandler* h, const char* key, int mode, OpenedImage* o, char* err, size_t errlen) {
  std::string image_key = key, snap;
  const bool readonly = mode != 0;
  if (size_t at = image_key.rfind('@'); mode == NBDR_OPEN_SNAPSHOT && at != std::string::npos) {
    snap = image_key.substr(at + 1);  // validated by the runner
    image_key.resize(at);
  }
  if (!ParseKey(image_key.c_str(), &o->ref, err, errlen)) return EINVAL;
  int rc = 0;
  if (int e = WithIoctx(h, o->ref, &rc, err, errlen, [&](rados_ioctx_t i, const auto& c) {
        o->io = i;
        o->conn = c;
        return readonly ? rbd_open_read_only(i, o->ref.image.c_str(), &o->image,
                                             snap.empty() ? nullptr : snap.c_str())
                        : rbd_open(i, o->ref.image.c_str(), &o->image, nullptr);
      }))
    return e;
  if (rc == -ENOENT && !snap.empty()) {
    SetErr(err, errlen, "rbd image %s has no snapshot named %s", Describe(o->ref).c_str(),
           snap.c_str());
    return ENOENT;
  }
  return rc < 0 ? ImageError("open", o->ref, rc, err, errlen) : 0;
}

}  // namespace rbd_backstore

namespace {

int RbdOpen(void* state, const char* key, int readonly, nbdr_export_info* info,
            void** export_handle, char* err, size_t errlen) {
  auto* h = static_cast<RbdHandler*>(state);
  OpenedImage o;
  if (int rc = OpenImage(h, key, readonly, &o, err, errlen)) return rc;
  int rc = 0;
  uint64_t size = 0, features = 0;
  if ((rc = rbd_get_size(o.image, &size)) < 0 || (rc = rbd_get_features(o.image, &features)) < 0) {
    rbd_close(o.image);
    return ImageError("stat", o.ref, rc, err, errlen);
  }
  auto* e = new RbdExport{
      h, std::move(o.conn), key, o.image, size, (features & RBD_FEATURE_FAST_DIFF) != 0};
  e->current_size = size;
  e->readonly = readonly != 0;
  if ((rc = rbd_update_watch(o.image, &e->update_watch, OnHeaderUpdate, e)) == 0)
    e->watching = true;
  else
    handler_util::Log(h->svc, NBDR_LOG_WARNING, key,
                      "cannot watch the image's header (%s): a "
                      "write across its end after it shrinks will not be noticed",
                      strerror(-rc));
  info->size = size;
  // No FAST_ZERO (write-zeroes may write data) and no CACHE.
  info->caps = NBDR_CAP_FLUSH | NBDR_CAP_FUA | NBDR_CAP_TRIM | NBDR_CAP_WRITE_ZEROES |
               NBDR_CAP_MULTI_CONN | NBDR_CAP_EXTENTS;
  *export_handle = e;
  return 0;
}

// Resizes the image (librbd hands the resize to the holder of its
// exclusive lock, an export of this runner perhaps, which then serves the
// new size).
// librbd follows a resize by another client (the header's watch).
int RbdExportSize(void* export_handle, uint64_t* size, char* err, size_t errlen) {
  auto* e = static_cast<RbdExport*>(export_handle);
  if (int rc = rbd_get_size(e->image, size); rc < 0) {
    SetErr(err, errlen, "rbd image %s: size: %s", e->key.c_str(), strerror(-rc));
    return -rc;
  }
  return 0;
}

int RbdResize(void* state, const char* key, uint64_t size, int may_shrink, char* err,
              size_t errlen) {
  OpenedImage o;
  if (int rc = OpenImage(static_cast<RbdHandler*>(state), key, 0, &o, err, errlen)) return rc;
  uint64_t have = 0;
  int rc = rbd_get_size(o.image, &have);
  if (rc == 0) {
    if (int refused = handler_util::RefuseHiddenShrink(may_shrink, have, size, key, err, errlen)) {
      rbd_close(o.image);
      return refused;
    }
    rc = rbd_resize(o.image, size);
  }
  rbd_close(o.image);
  return rc < 0 ? ImageError("resize", o.ref, rc, err, errlen) : 0;
}

// The pool's id and the image's id: an image removed and created again
// under the same name (or in a pool made again) has new ones.
int RbdIdentify(void* state, const char* key, char* buf, size_t buflen, char* err, size_t errlen) {
  auto* h = static_cast<RbdHandler*>(state);
  OpenedImage o;
  if (int rc = OpenImage(h, key, NBDR_OPEN_READONLY, &o, err, errlen)) return rc;
  char id[128] = "";
  int rc = rbd_get_id(o.image, id, sizeof id);
  rbd_close(o.image);
  if (rc < 0) return ImageError("read the id of", o.ref, rc, err, errlen);
  snprintf(buf, buflen, "{\"pool_id\":\"%lld\",\"image_id\":\"%s\"}",
           static_cast<long long>(rados_ioctx_get_id(o.io)), id);
  return 0;
}

// Whether lock owner `owner` (an address such as "10.0.0.1:0/3523456")
// is this runner's own cluster connection: its addresses (`mine`, from
// rados_getaddrs) carry the same nonce, the number after the slash.
bool IsOwnAddress(const std::string& owner, const char* mine) {
  const size_t slash = owner.rfind('/');
  if (!mine || slash == std::string::npos || slash + 1 == owner.size()) return false;
  const std::string nonce = owner.substr(slash);  // "/3523456"
  for (const char* p = strstr(mine, nonce.c_str()); p; p = strstr(p + 1, nonce.c_str())) {
    const char after = p[nonce.size()];
    if (after < '0' || after > '9') return true;
  }
  return false;
}

// High availability: this runner takes key over from a runner of its set
// that no longer answers. When another client holds the image's
// exclusive lock, the lock is broken: librbd has the cluster blocklist
// that client (rbd_blocklist_on_break_lock, on by default), so nothing it
// still holds reaches the image, and this runner's next write takes the
// lock at once instead of waiting for the old holder's watch to expire
// (osd_client_watch_timeout).
int RbdTakeOver(void* state, const char* key, char* err, size_t errlen) {
  auto* h = static_cast<RbdHandler*>(state);
  OpenedImage o;
  if (int rc = OpenImage(h, key, 0, &o, err, errlen)) return rc;
  rbd_lock_mode_t mode;
  char* owners[8];
  size_t count = std::size(owners);
  int rc = rbd_lock_get_owners(o.image, &mode, owners, &count);
  if (rc == -ENOENT || (rc == 0 && count == 0)) {
    rbd_close(o.image);
    handler_util::Log(h->svc, NBDR_LOG_INFO, key, "take over: no client holds the image's lock");
    return 0;
  }
  if (rc < 0) {
    rbd_close(o.image);
    return ImageError("read the lock owners of", o.ref, rc, err, errlen);
  }
  char* mine = nullptr;
  if ((rc = rados_getaddrs(o.conn->cluster, &mine)) < 0 || !mine) {
    rbd_lock_get_owners_cleanup(owners, count);
    rbd_close(o.image);
    SetErr(err, errlen,
           "cannot tell this runner's own address in the cluster (%s): not "
           "breaking any lock of rbd image %s",
           strerror(rc < 0 ? -rc : EIO), Describe(o.ref).c_str());
    return EIO;
  }
  for (size_t i = 0; i < count && rc >= 0; i++) {
    if (IsOwnAddress(owners[i], mine)) continue;  // this runner holds it already
    rc = rbd_lock_break(o.image, mode, owners[i]);
    if (rc >= 0)
      handler_util::Log(h->svc, NBDR_LOG_WARNING, key,
                        "take over: broke the exclusive lock of the client at %s; the cluster "
                        "blocklists it (this runner is %s)",
                        owners[i], mine);
    else
      SetErr(err, errlen, "cannot break the lock of rbd image %s held by %s: %s",
             Describe(o.ref).c_str(), owners[i], strerror(-rc));
  }
  rados_buffer_free(mine);
  rbd_lock_get_owners_cleanup(owners, count);
  rbd_close(o.image);
  return rc < 0 ? -rc : 0;
}

void RbdClose(void* export_handle) {
  auto* e = static_cast<RbdExport*>(export_handle);
  e->failures.Flush(e->h->svc, e->key);
  if (e->watching) rbd_update_unwatch(e->image, e->update_watch);
  if (int rc = rbd_close(e->image); rc < 0)
    handler_util::Log(e->h->svc, NBDR_LOG_WARNING, e->key, "close: %s", strerror(-rc));
  delete e;  // the last image of a blocklisted connection shuts it down
}

// ---- I/O ----------------------------------------------------------------

// Collects rbd_diff_iterate2 answers into the request's extents.
struct ExtentWalk {
  nbdr_request* r;
  uint64_t pos;  // end of what is described so far
  uint64_t end;
};
constexpr int kWalkFull = -ENOBUFS;  // stops the walk: extents[] is full

int AddExtent(ExtentWalk* w, uint64_t len, uint32_t flags) {
  nbdr_request* r = w->r;
  if (len == 0) return 0;
  if (r->nr_extents > 0 && r->extents[r->nr_extents - 1].flags == flags) {
    r->extents[r->nr_extents - 1].length += len;
  } else {
    if (r->nr_extents == r->max_extents) return kWalkFull;
    r->extents[r->nr_extents].length = len;
    r->extents[r->nr_extents].flags = flags;
    r->nr_extents++;
  }
  w->pos += len;
  return 0;
}

int OnDiffExtent(uint64_t off, size_t len, int exists, void* arg) {
  auto* w = static_cast<ExtentWalk*>(arg);
  uint64_t start = std::max(off, w->pos), stop = std::min<uint64_t>(off + len, w->end);
  if (stop <= start) return 0;
  if (int rc = AddExtent(w, start - w->pos, NBDR_EXTENT_HOLE | NBDR_EXTENT_ZERO)) return rc;
  return AddExtent(w, stop - start, exists ? 0 : NBDR_EXTENT_HOLE | NBDR_EXTENT_ZERO);
}

int BeyondTheEnd(RbdExport* e, const nbdr_request* r);

int Extents(RbdExport* e, nbdr_request* r) {
  // The image's size now: a resize may have changed it since the open.
  uint64_t size = 0;
  if (int rc = rbd_get_size(e->image, &size); rc < 0) return -rc;
  if (r->offset >= size) return BeyondTheEnd(e, r);
  ExtentWalk w{r, r->offset, std::min(r->offset + r->length, size)};
  r->nr_extents = 0;
  int rc = rbd_diff_iterate2(e->image, nullptr, r->offset, w.end - r->offset, 1,
                             e->whole_object_diff ? 1 : 0, OnDiffExtent, &w);
  if (rc == kWalkFull) return 0;
  if (rc < 0) return -rc;
  // Whatever the walk did not mention is unallocated. When extents[] is
  // full the client asks again from where the answer ends.
  if (w.pos < w.end) AddExtent(&w, w.end - w.pos, NBDR_EXTENT_HOLE | NBDR_EXTENT_ZERO);
  return 0;
}

// A librbd result as the positive errno the NBD client gets: timeouts and
// a blocklisted client become EIO.
int ErrorFromRbd(ssize_t ret) {
  if (ret >= 0) return 0;
  int e = static_cast<int>(-ret);
  return e == ETIMEDOUT || e == kBlocklisted ? EIO : e;
}

// The result of a request on e's image: a blocklisted connection is
// noted, so that the next open makes a new one.
int ExportResult(RbdExport* e, ssize_t ret) {
  if (ret == -kBlocklisted && !e->conn->blocklisted.exchange(true))
    handler_util::Log(e->h->svc, NBDR_LOG_ERROR, e->key,
                      "the Ceph cluster blocklisted this runner's connection: I/O on the images "
                      "open through it fails until their clients reconnect");
  return ErrorFromRbd(ret);
}

void OnFuaFlushed(rbd_completion_t c, void* arg) {
  auto* r = static_cast<nbdr_request*>(arg);
  int err = ExportResult(static_cast<RbdExport*>(r->handler_private), rbd_aio_get_return_value(c));
  rbd_aio_release(c);
  r->complete(r, err);
}

// The answer to a request that met the image's current end: the image
// shrank under the runner, which checked the request against its size at
// open.
int BeyondTheEnd(RbdExport* e, const nbdr_request* r) {
  handler_util::Log(e->h->svc, NBDR_LOG_ERROR, e->key,
                    "request type %u at %llu, %llu bytes: beyond the image's end (it shrank "
                    "since the runner opened it)",
                    r->type, static_cast<unsigned long long>(r->offset),
                    static_cast<unsigned long long>(r->length));
  return EIO;
}

// Completes r with err, first making a successful FUA request durable.
void FinishRequest(RbdExport* e, nbdr_request* r, int err) {
  if (!err && (r->flags & NBDR_REQ_FLAG_FUA) && r->type != NBDR_REQ_FLUSH) {
    // Issued from a worker, not from librbd's completion thread.
    e->h->pool->Submit([e, r] {
      rbd_completion_t fc;
      int rc = rbd_aio_create_completion(r, OnFuaFlushed, &fc);
      if (rc == 0 && (rc = rbd_aio_flush(e->image, fc)) < 0) rbd_aio_release(fc);
      if (rc < 0) r->complete(r, ErrorFromRbd(rc));
    });
    return;
  }
  r->complete(r, err);
}

// A write that librbd reported done: an error if it crossed the image's
// current end (librbd dropped that part), else finished.
void FinishWrite(RbdExport* e, nbdr_request* r) {
  FinishRequest(e, r, r->offset + r->length > e->current_size ? BeyondTheEnd(e, r) : 0);
}

// Completion of every rbd_aio_* call; FUA requests are flushed next.
void OnRbdDone(rbd_completion_t c, void* arg) {
  auto* r = static_cast<nbdr_request*>(arg);
  auto* e = static_cast<RbdExport*>(r->handler_private);
  ssize_t ret = rbd_aio_get_return_value(c);
  int err = ExportResult(e, ret);
  rbd_aio_release(c);
  // The runner checked the request against the size the image had when
  // it was opened. librbd clips a read at the image's current end, and
  // refuses a request beyond it (EINVAL): both mean the image shrank under
  // the runner, and the short read's buffer tail holds no data of it.
  bool short_read = !err && r->type == NBDR_REQ_READ && static_cast<uint64_t>(ret) != r->length;
  if (short_read || ret == -EINVAL) {
    err = BeyondTheEnd(e, r);
  } else if (err) {
    // ENOSPC and EDQUOT too: a full pool is the operator's business.
    e->failures.Note(e->h->svc, e->key, r->type, r->offset, err);
  }
  // A write clipped at a shrunk end reports success and the full length,
  // so its return value cannot tell: writes compare their end with the
  // image's size instead, asked again once librbd saw the header change.
  if (!err && (r->type == NBDR_REQ_WRITE || r->type == NBDR_REQ_WRITE_ZEROES)) {
    // (A write past the size known here asks too: the image may have grown.)
    if (e->header_changed || r->offset + r->length > e->current_size) {
      // Asking librbd may wait on the cluster: not on its completion thread.
      e->h->pool->Submit([e, r] {
        uint64_t size = 0;
        e->header_changed = false;
        if (rbd_get_size(e->image, &size) == 0) e->current_size = size;
        FinishWrite(e, r);
      });
      return;
    }
    FinishWrite(e, r);
    return;
  }
  FinishRequest(e, r, err);
}

void RbdSubmit(void* export_handle, nbdr_request* r) {
  auto* e = static_cast<RbdExport*>(export_handle);
  r->handler_private = e;
  if (r->type == NBDR_REQ_EXTENTS) {
    e->h->pool->Submit([e, r] { r->complete(r, Extents(e, r)); });
    return;
  }
  rbd_completion_t c;
  int rc = rbd_aio_create_completion(r, OnRbdDone, &c);
  if (rc < 0) {
    r->complete(r, -rc);
    return;
  }
  char* buf = static_cast<char*>(r->buf);
  switch (r->type) {
    case NBDR_REQ_READ:
      rc = rbd_aio_read(e->image, r->offset, r->length, buf, c);
      break;
    case NBDR_REQ_WRITE:
      rc = rbd_aio_write(e->image, r->offset, r->length, buf, c);
      break;
    case NBDR_REQ_FLUSH:
      rc = rbd_aio_flush(e->image, c);
      break;
    case NBDR_REQ_TRIM:
      rc = rbd_aio_discard(e->image, r->offset, r->length, c);
      break;
    case NBDR_REQ_WRITE_ZEROES:
      rc = rbd_aio_write_zeroes(
          e->image, r->offset, r->length, c,
          (r->flags & NBDR_REQ_FLAG_NO_HOLE) ? RBD_WRITE_ZEROES_FLAG_THICK_PROVISION : 0, 0);
      break;
    default:
      rc = -EINVAL;
  }
  if (rc < 0) {
    rbd_aio_release(c);
    r->complete(r, ErrorFromRbd(rc));
  }
}

const char* const kOptions[] = {"ceph-conf",       "ceph-id",       "ceph-keyring",
                                "ceph-op-timeout", "ceph-full-try", nullptr};

const nbdr_handler kRbdHandler = {
    sizeof(nbdr_handler),
    NBDR_HANDLER_ABI_VERSION,
    "rbd",
    "Ceph RBD images through librbd",
    NBDR_PACKAGE_VERSION,
    "ceph-conf=FILE            Ceph configuration (default: librados' search, "
    "/etc/ceph/ceph.conf)\n"
    "ceph-id=ID                client id, without 'client.' (default admin)\n"
    "ceph-keyring=FILE         keyring of that client (default from the configuration)\n"
    "ceph-op-timeout=SECONDS   a monitor or OSD that does not answer fails the request with "
    "EIO after this long (default 30)\n"
    "ceph-full-try=on|off      on a full pool, fail writes that need space at once with "
    "ENOSPC instead of holding them (default off)\n",
    kOptions,
    RbdLoad,
    RbdUnload,
    RbdCreate,
    RbdRemove,
    RbdOpen,
    RbdClose,
    RbdSubmit,
    RbdIdentify,
    RbdTakeOver,
    RbdResize,
    SnapshotCreate,
    SnapshotDelete,
    SnapshotList,
    SnapshotRollback,
    nullptr,  // snapshot_copy_ranges: RBD snapshots are never copies
    RbdExportSize,
};

}  // namespace

extern "C" NBDR_HANDLER_EXPORT const nbdr_handler* handler_init(const nbdr_services* svc) {
  (void)svc;
  return &kRbdHandler;
}
