// SPDX-License-Identifier: BSD-3-Clause
/*
 * nbd-runner handler ABI: the contract between the nbd-runner daemon and the
 * backstore plugins it loads (lib<name>_handler.so). Plain C, so handlers may
 * be written in C or C++; a handler links no runner code and uses only what
 * this header declares and the services table it is handed.
 *
 * Lifecycle (see docs/handler-guide.md for the full story):
 *
 *   dlopen(lib<name>_handler.so)
 *     -> handler_init(services)          returns the static descriptor
 *     -> load(services, &state)          once, after configuration is known
 *        -> create / remove              from RPC threads, any time
 *        -> open(key) -> export          once per served backstore
 *             -> submit(export, request) from any runner thread, many in
 *                                        flight; complete from any thread
 *           -> close(export)             after every request completed
 *     -> unload(state)                   at shutdown
 *
 * Error convention, the same for every callback: return 0 on success or a
 * positive errno value on failure, and write a sentence for the operator
 * into err (errlen bytes, always NUL-terminated by the handler) such as
 * "volume 'vol1' does not exist". Asynchronous requests report a positive
 * errno through their completion callback.
 *
 * Versioning: a handler sets abi_version = NBDR_HANDLER_ABI_VERSION and
 * struct_size = sizeof(struct nbdr_handler) at build time; the runner
 * refuses a handler built for another ABI version. New fields are only
 * ever added at the end of a struct, guarded by struct_size.
 */
#ifndef NBD_RUNNER_HANDLER_H
#define NBD_RUNNER_HANDLER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define NBDR_HANDLER_ABI_VERSION 1

/* Marks the single symbol a handler exports. */
#define NBDR_HANDLER_EXPORT __attribute__((visibility("default")))

/* ---- Services the runner provides to a handler ------------------------ */

enum nbdr_log_level {
  NBDR_LOG_ERROR = 0,
  NBDR_LOG_WARNING = 1,
  NBDR_LOG_INFO = 2,
  NBDR_LOG_DEBUG = 3,
};

struct nbdr_services {
  uint32_t struct_size;
  uint32_t abi_version;
  /* Opaque; pass it back to every service call. */
  void *ctx;
  /* Logs one line. context names the backstore or volume the line is
   * about (may be NULL). Thread-safe. */
  void (*log)(void *ctx, int level, const char *context, const char *fmt, ...)
      __attribute__((format(printf, 4, 5)));
  /* The value of a configuration option, or NULL when it is not set. A
   * handler may ask for the options it declared in nbdr_handler.options
   * (from load() on) and for the runner's options it offers every
   * handler (below); any other name gives NULL. The string lives as long
   * as the handler stays loaded. Thread-safe. */
  const char *(*get_option)(void *ctx, const char *name);
};

/* The runner's options every handler may read through get_option:
 * how many I/O worker threads a handler should run (the runner's
 * --threads, a positive number), and the runner's log directory, where a
 * handler may keep its storage library's own logs. */
#define NBDR_OPTION_THREADS "threads"
#define NBDR_OPTION_LOG_DIR "log-dir"

/* ---- Backstore creation and export description ------------------------ */

struct nbdr_create_params {
  uint32_t struct_size;
  uint32_t block_size; /* 512 or 4096 */
  uint64_t size;       /* bytes, > 0, multiple of block_size */
  int prealloc;        /* non-zero: allocate every block now */
};

/* Capabilities a handler declares for an open export; the runner
 * advertises exactly these to NBD clients. */
#define NBDR_CAP_FLUSH (1u << 0)        /* NBDR_REQ_FLUSH persists data */
#define NBDR_CAP_FUA (1u << 1)          /* NBDR_REQ_FLAG_FUA honoured */
#define NBDR_CAP_TRIM (1u << 2)         /* NBDR_REQ_TRIM */
#define NBDR_CAP_WRITE_ZEROES (1u << 3) /* NBDR_REQ_WRITE_ZEROES */
#define NBDR_CAP_FAST_ZERO (1u << 4)    /* NBDR_REQ_FLAG_FAST_ZERO honoured */
#define NBDR_CAP_MULTI_CONN (1u << 5)   /* one export serves several
                                           connections consistently */
#define NBDR_CAP_CACHE (1u << 6)        /* NBDR_REQ_CACHE */
#define NBDR_CAP_EXTENTS (1u << 7)      /* NBDR_REQ_EXTENTS */

struct nbdr_export_info {
  uint32_t struct_size;
  uint32_t caps;           /* NBDR_CAP_* */
  uint64_t size;           /* bytes */
  /* 0: the handler takes any offset and length (clients that ask are
   * told the backstore's block size); else the alignment it needs. */
  uint32_t min_block;
  uint32_t preferred_block;/* 0: 4096 */
  uint32_t max_payload;    /* 0: the runner's limit (32 MiB) */
  uint32_t reserved;
};

/* ---- Asynchronous requests -------------------------------------------- */

enum nbdr_request_type {
  NBDR_REQ_READ = 0,         /* fill buf[0..length) from offset */
  NBDR_REQ_WRITE = 1,        /* write buf[0..length) at offset */
  NBDR_REQ_FLUSH = 2,        /* persist every write completed so far */
  NBDR_REQ_TRIM = 3,         /* discard [offset, offset+length) */
  NBDR_REQ_WRITE_ZEROES = 4, /* make [offset, offset+length) read as zero */
  NBDR_REQ_CACHE = 5,        /* prefetch [offset, offset+length) */
  NBDR_REQ_EXTENTS = 6,      /* describe allocation from offset */
};

#define NBDR_REQ_FLAG_FUA (1u << 0)       /* durable before completion */
#define NBDR_REQ_FLAG_NO_HOLE (1u << 1)   /* WRITE_ZEROES: keep allocated */
#define NBDR_REQ_FLAG_FAST_ZERO (1u << 2) /* WRITE_ZEROES: fail with ENOTSUP
                                             rather than be slow */

#define NBDR_EXTENT_HOLE (1u << 0) /* not allocated */
#define NBDR_EXTENT_ZERO (1u << 1) /* reads as zeroes */

struct nbdr_extent {
  uint64_t length;
  uint32_t flags; /* NBDR_EXTENT_* */
  uint32_t reserved;
};

/* One request. The runner owns it; the handler may use it (and
 * handler_private) from submit until it calls complete, and not after.
 * The runner has already checked that offset + length lies inside the
 * export, that the export is writable for write types, and that the type
 * and flags match the capabilities the handler declared. */
struct nbdr_request {
  uint32_t type;  /* enum nbdr_request_type */
  uint32_t flags; /* NBDR_REQ_FLAG_* */
  uint64_t offset;
  uint64_t length;
  void *buf; /* READ: length bytes to fill; WRITE: length bytes of data */
  /* EXTENTS: the handler writes up to max_extents contiguous extents that
   * start at offset into extents[] and sets nr_extents (at least 1). The
   * last one may end before offset + length (the client asks again). */
  struct nbdr_extent *extents;
  uint32_t max_extents;
  uint32_t nr_extents;
  /* Free for the handler's use while it owns the request. */
  void *handler_private;
  /* Set by the runner. The handler calls it exactly once, from any thread,
   * possibly before submit returns; error is 0 or a positive errno. */
  void (*complete)(struct nbdr_request *req, int error);
};

/* ---- The handler descriptor ------------------------------------------- */

struct nbdr_handler {
  uint32_t struct_size; /* sizeof(struct nbdr_handler) */
  uint32_t abi_version; /* NBDR_HANDLER_ABI_VERSION */
  const char *name;     /* the backstore type: [a-z0-9_-]{1,32} */
  const char *description;
  const char *version;
  /* Help for the configuration options, one "name=VALUE  what it does"
   * per line. */
  const char *config_help;
  /* NULL-terminated list of option names the handler reads through
   * get_option, e.g. "file-dir". The runner accepts them in its config
   * file and on its command line. */
  const char *const *options;

  /* Creates the handler instance. Called once, after configuration. */
  int (*load)(const struct nbdr_services *svc, void **state, char *err, size_t errlen);
  /* Destroys the instance; every export is closed by then. */
  void (*unload)(void *state);

  /* Creates the backing object for key (a validated relative name: no
   * "..", no empty components, no control characters). Fails with EEXIST
   * when it exists. May block; called from RPC threads. */
  int (*create)(void *state, const char *key, const struct nbdr_create_params *params,
                char *err, size_t errlen);
  /* Removes the backing object. ENOENT when it does not exist. */
  int (*remove)(void *state, const char *key, char *err, size_t errlen);
  /* Opens key for serving; fills info and *export. readonly is 0, or
   * NBDR_OPEN_READONLY, or NBDR_OPEN_SNAPSHOT (added in 0.5; read-only
   * too: key is "KEY@NAME", snapshot NAME of backstore KEY, split at the
   * last '@'). May block; called concurrently for different keys, never
   * twice at once for one key. */
  int (*open)(void *state, const char *key, int readonly, struct nbdr_export_info *info,
              void **export_handle, char *err, size_t errlen);
  /* Closes an export. The runner calls it only when no request is in
   * flight on it. */
  void (*close)(void *export_handle);
  /* Starts a request; see struct nbdr_request. Never blocks for long:
   * slow work goes to the handler's own threads or async library. */
  void (*submit)(void *export_handle, struct nbdr_request *req);

  /* ---- Optional; added in 0.1 at the end (check struct_size) ---- */

  /* Describes which backing object key names right now, as a JSON object
   * of strings written NUL-terminated into buf (buflen bytes), e.g.
   * {"pool_id":"2","image_id":"10226b8b4567"}: something that changes
   * when the object is deleted and made again under the same name, and
   * only then. The runner remembers the answer it got when the backstore
   * was registered and compares it with a later answer: a different one
   * means the object was replaced behind its back, and the runner does not
   * serve it as the same backstore. Returns 0, or a positive errno with a
   * sentence in err (ENOENT when the object is gone). May block; called
   * from the runner's control and connection threads. NULL: the handler
   * has no notion of identity, and no replacement is detected. */
  int (*identify)(void *state, const char *key, char *buf, size_t buflen, char *err,
                  size_t errlen);

  /* ---- Optional; added in 0.2 at the end (check struct_size) ---- */

  /* High availability: this runner is taking key over from another runner
   * of the backstore's set, which no longer answers (killed, or its node
   * silent). Fences the other runners out of the backing object, so that
   * nothing one of them still holds reaches it afterwards; e.g. rbd breaks
   * the image's exclusive lock, and the cluster blocklists its holder. Must
   * never fence this runner itself. Returns 0 (also when no one else held
   * the object), or a positive errno with a sentence in err. May block;
   * called from the runner's control threads. NULL: the backend has no
   * fence of its own (the runner's fencing still applies). */
  int (*take_over)(void *state, const char *key, char *err, size_t errlen);

  /* ---- Optional; added in 0.3 at the end (check struct_size) ---- */

  /* Sets the size of key's backing object to size (the runner has checked
   * it against the block size). Unless may_shrink, an object larger than
   * size (grown behind the runner's back) is refused with EINVAL: only
   * then does the runner know nothing uses the tail (it refuses a shrink
   * while the backstore is mapped or open). Exports of key that are open
   * stay open and must serve requests up to the new size at once. Returns
   * 0, or a positive errno with a sentence in err. May block; called from
   * the runner's control threads. NULL: the backstore's size cannot be
   * changed through the runner (ENOTSUP). */
  int (*resize)(void *state, const char *key, uint64_t size, int may_shrink, char *err,
                size_t errlen);

  /* ---- Optional; added in 0.4 at the end (check struct_size) ---- */

  /* Snapshots of key's backing object, all four or none. name is
   * [A-Za-z0-9._-]{1,64}, checked by the runner. A handler with them also
   * opens "KEY@NAME" (split at the last '@'), always read-only: snapshot
   * NAME of backstore KEY, served as its own export. All may block; they
   * are called from the runner's control threads.
   *
   * export_handle is key's open export, or NULL when it is not open; when
   * it is open the runner has quiesced it: no write is in flight, none
   * starts until the call returns, and a flush completed after the last
   * one. flags: NBDR_SNAPSHOT_COPY lets create make a full copy where the
   * backend cannot snapshot cheaply. Each returns 0, or a positive errno
   * with a sentence in err: EEXIST (create: name taken), ENOENT (no such
   * snapshot), ENOTSUP (not here; say why and what would do). */
  int (*snapshot_create)(void *state, const char *key, void *export_handle, const char *name,
                         uint32_t flags, char *err, size_t errlen);
  int (*snapshot_delete)(void *state, const char *key, const char *name, char *err,
                         size_t errlen);
  /* Calls each once per snapshot of key, oldest first: its name, the size
   * of the object when it was taken, and when (seconds since the epoch,
   * 0 if unknown). */
  int (*snapshot_list)(void *state, const char *key,
                       void (*each)(void *ctx, const char *name, uint64_t size,
                                    int64_t created),
                       void *ctx, char *err, size_t errlen);
  /* Makes key's object what it was when name was taken (its size too);
   * sets *size to that size. The runner calls it with export_handle open
   * only when the operator forced it. Return ENOENT, EACCES, EPERM, EBUSY,
   * ENOTSUP or EINVAL only when the object was left as it was; any other
   * error says it may be partly rolled back, and the runner does not
   * serve it until a rollback completes. */
  int (*snapshot_rollback)(void *state, const char *key, void *export_handle, const char *name,
                           uint64_t *size, char *err, size_t errlen);

  /* ---- Optional; added in 0.5 at the end (check struct_size) ---- */

  /* Copy snapshots of an open export, taken while its writes go on: a
   * copy takes as long as the data takes to read and write, longer than a
   * client waits for a held write. With this callback (and the four
   * above), the runner takes a copy snapshot (NBDR_SNAPSHOT_COPY) of an
   * open export in steps, and records what is written meanwhile:
   *   1. snapshot_create with NBDR_SNAPSHOT_COPY | NBDR_SNAPSHOT_UNFINISHED
   *      and no export_handle, writes going on: copies key's data into
   *      snapshot name, which stays unfinished (not listed, not opened,
   *      and its name taken only for the next create, which replaces it);
   *   2. snapshot_copy_ranges, writes going on, as often as the runner
   *      likes: copies the ranges written meanwhile again;
   *   3. snapshot_copy_ranges with NBDR_SNAPSHOT_FINISH, the export
   *      quiesced: copies the last ranges and completes the snapshot.
   * With NBDR_SNAPSHOT_DISCARD (and no ranges) it removes the unfinished
   * snapshot instead, after a failure. ranges holds nranges pairs
   * (offset, length) within the size key had at step 1; a range that
   * reads as zeroes in key must read as zeroes in the snapshot. Returns
   * 0, or a positive errno with a sentence in err. May block; called from
   * the runner's control threads. NULL: a copy snapshot of an open export
   * holds its writes until the copy is complete. */
  int (*snapshot_copy_ranges)(void *state, const char *key, const char *name,
                              const uint64_t *ranges, size_t nranges, uint32_t flags,
                              char *err, size_t errlen);

  /* Sets *size to the size of the open export's backing object now, as
   * the backend sees it (fstat, rbd_get_size): how the runner notices a
   * resize done behind its back (a file grown by hand, `rbd resize`)
   * while the export stays open. Cheap; called from the runner's control
   * threads when a client asks for the backstore's size (nbd-clid does
   * every few seconds) and when a client connects to an open export.
   * Returns 0, or a positive errno with a sentence in err. NULL: such a
   * resize is seen at the next open. */
  int (*export_size)(void *export_handle, uint64_t *size, char *err, size_t errlen);
};

/* open's readonly argument: any value but 0 means read-only. */
#define NBDR_OPEN_READONLY 1
#define NBDR_OPEN_SNAPSHOT 2

/* snapshot_create flags. */
#define NBDR_SNAPSHOT_COPY 0x1u
#define NBDR_SNAPSHOT_UNFINISHED 0x2u
/* snapshot_copy_ranges flags. */
#define NBDR_SNAPSHOT_FINISH 0x4u
#define NBDR_SNAPSHOT_DISCARD 0x8u

/* The smallest descriptor the runner accepts: one without the optional
 * callbacks above. */
#define NBDR_HANDLER_MIN_STRUCT_SIZE offsetof(struct nbdr_handler, identify)

/* The one symbol a handler exports. Returns the handler's static
 * descriptor, or NULL when the handler cannot run (it should log why
 * through svc first). */
typedef const struct nbdr_handler *(*nbdr_handler_init_fn)(const struct nbdr_services *svc);
#define NBDR_HANDLER_INIT_SYMBOL "handler_init"

#ifdef __cplusplus
}
#endif

#endif /* NBD_RUNNER_HANDLER_H */
