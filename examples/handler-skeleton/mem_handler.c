/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * mem: the smallest useful nbd-runner handler, an example for handler
 * authors. Backstores live in the runner's memory and are gone when it
 * stops (the registry keeps their names; opening one then fails with
 * ENOENT). Every request completes inline, from submit; a real backend
 * would complete from its own threads or async library instead.
 *
 * Key: any name the runner accepts (e.g. "scratch1"). Capabilities: flush
 * (nothing to do), trim and write zeroes (both zero the range), multi-conn
 * (one buffer behind every connection).
 *
 * Option mem-min-block=N (a power of two, default 0: any alignment) makes
 * it behave like a backend that needs aligned I/O (a device with 4K
 * sectors, O_DIRECT): it declares that minimum at open and fails any
 * request that does not keep it. The runner then serves clients sending
 * any offset and length by read-modify-write, so none ever fails.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nbd-runner/handler.h>

struct mem_disk {
  struct mem_disk *next;
  char *key;
  unsigned char *data;
  uint64_t size;
  int open_count;
  uint32_t min_block;
};

struct mem_state {
  const struct nbdr_services *svc;
  uint32_t min_block; /* mem-min-block, 0: any */
  pthread_mutex_t lock; /* guards disks and open_count */
  struct mem_disk *disks;
};

static void set_err(char *err, size_t errlen, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
}

static struct mem_disk *find_locked(struct mem_state *st, const char *key) {
  for (struct mem_disk *d = st->disks; d; d = d->next)
    if (strcmp(d->key, key) == 0) return d;
  return NULL;
}

static int mem_load(const struct nbdr_services *svc, void **state, char *err, size_t errlen) {
  struct mem_state *st = calloc(1, sizeof *st);
  if (!st) {
    set_err(err, errlen, "out of memory");
    return ENOMEM;
  }
  st->svc = svc;
  const char *mb = svc->get_option(svc->ctx, "mem-min-block");
  if (mb && *mb) {
    char *end;
    unsigned long v = strtoul(mb, &end, 10);
    if (*end || v == 0 || v > 65536 || (v & (v - 1))) {
      set_err(err, errlen, "mem-min-block=%s: not a power of two up to 65536", mb);
      free(st);
      return EINVAL;
    }
    st->min_block = (uint32_t)v;
  }
  pthread_mutex_init(&st->lock, NULL);
  svc->log(svc->ctx, NBDR_LOG_INFO, NULL, "memory backstores ready");
  *state = st;
  return 0;
}

static void mem_unload(void *state) {
  struct mem_state *st = state;
  while (st->disks) {
    struct mem_disk *d = st->disks;
    st->disks = d->next;
    free(d->data);
    free(d->key);
    free(d);
  }
  pthread_mutex_destroy(&st->lock);
  free(st);
}

static int mem_create(void *state, const char *key, const struct nbdr_create_params *p,
                      char *err, size_t errlen) {
  struct mem_state *st = state;
  struct mem_disk *d = calloc(1, sizeof *d);
  if (d) d->data = calloc(1, p->size); /* zeroed, allocated lazily by the kernel */
  if (!d || !d->data || !(d->key = strdup(key))) {
    if (d) free(d->data);
    free(d);
    set_err(err, errlen, "cannot allocate %llu bytes of memory", (unsigned long long)p->size);
    return ENOMEM;
  }
  d->size = p->size;
  pthread_mutex_lock(&st->lock);
  int exists = find_locked(st, key) != NULL;
  if (!exists) {
    d->next = st->disks;
    st->disks = d;
  }
  pthread_mutex_unlock(&st->lock);
  if (exists) {
    free(d->data);
    free(d->key);
    free(d);
    set_err(err, errlen, "memory backstore %s already exists", key);
    return EEXIST;
  }
  return 0;
}

static int mem_remove(void *state, const char *key, char *err, size_t errlen) {
  struct mem_state *st = state;
  pthread_mutex_lock(&st->lock);
  struct mem_disk **pp = &st->disks;
  while (*pp && strcmp((*pp)->key, key) != 0) pp = &(*pp)->next;
  struct mem_disk *d = *pp;
  int rc = 0;
  if (!d) rc = ENOENT;
  else if (d->open_count) rc = EBUSY;
  else *pp = d->next;
  pthread_mutex_unlock(&st->lock);
  if (rc) {
    set_err(err, errlen, rc == ENOENT ? "memory backstore %s does not exist (the runner restarted?)"
                                      : "memory backstore %s is open", key);
    return rc;
  }
  free(d->data);
  free(d->key);
  free(d);
  return 0;
}

static int mem_open(void *state, const char *key, int readonly, struct nbdr_export_info *info,
                    void **export_handle, char *err, size_t errlen) {
  struct mem_state *st = state;
  (void)readonly; /* the runner refuses writes to read-only exports itself */
  pthread_mutex_lock(&st->lock);
  struct mem_disk *d = find_locked(st, key);
  if (d) d->open_count++;
  pthread_mutex_unlock(&st->lock);
  if (!d) {
    set_err(err, errlen, "memory backstore %s does not exist (the runner restarted?)", key);
    return ENOENT;
  }
  info->size = d->size;
  info->min_block = st->min_block;
  d->min_block = st->min_block;
  info->caps = NBDR_CAP_FLUSH | NBDR_CAP_TRIM | NBDR_CAP_WRITE_ZEROES | NBDR_CAP_MULTI_CONN;
  *export_handle = d;
  return 0;
}

static void mem_close(void *export_handle) {
  struct mem_disk *d = export_handle;
  /* Only the runner's thread closing this export touches open_count now;
   * every request on it has completed. A real handler would lock here. */
  __atomic_sub_fetch(&d->open_count, 1, __ATOMIC_SEQ_CST);
}

static void mem_submit(void *export_handle, struct nbdr_request *req) {
  struct mem_disk *d = export_handle;
  /* The runner checked the range, the type against our capabilities and
   * read-only exports, and keeps the alignment we declared; what is left
   * is the work. The check below only proves the last promise. */
  uint64_t end = req->offset + req->length;
  if (d->min_block && req->type != NBDR_REQ_FLUSH &&
      (req->offset % d->min_block || (end % d->min_block && end != d->size))) {
    req->complete(req, EINVAL);
    return;
  }
  switch (req->type) {
    case NBDR_REQ_READ:
      memcpy(req->buf, d->data + req->offset, req->length);
      break;
    case NBDR_REQ_WRITE:
      memcpy(d->data + req->offset, req->buf, req->length);
      break;
    case NBDR_REQ_FLUSH:
      break;
    case NBDR_REQ_TRIM:
    case NBDR_REQ_WRITE_ZEROES:
      memset(d->data + req->offset, 0, req->length);
      break;
    default:
      req->complete(req, EINVAL);
      return;
  }
  req->complete(req, 0);
}

/* Optional (ABI 0.3). Requests on an open export read d->data without a
 * lock, so this example resizes only a closed backstore; a real backend
 * must serve the new size on open exports too. */
static int mem_resize(void *state, const char *key, uint64_t size, int may_shrink, char *err,
                      size_t errlen) {
  struct mem_state *st = state;
  pthread_mutex_lock(&st->lock);
  struct mem_disk *d = find_locked(st, key);
  /* (Its size never changes behind the runner's back: may_shrink is moot.) */
  (void)may_shrink;
  int rc = !d ? ENOENT : d->open_count ? EBUSY : 0;
  unsigned char *data = rc ? NULL : realloc(d->data, size ? size : 1);
  if (!rc && !data) rc = ENOMEM;
  if (!rc) {
    if (size > d->size) memset(data + d->size, 0, size - d->size);
    d->data = data;
    d->size = size;
  }
  pthread_mutex_unlock(&st->lock);
  if (rc == ENOENT) set_err(err, errlen, "memory backstore %s does not exist", key);
  if (rc == EBUSY) set_err(err, errlen, "memory backstore %s is open: the mem handler resizes "
                                        "only backstores no client has open", key);
  if (rc == ENOMEM) set_err(err, errlen, "cannot allocate %llu bytes", (unsigned long long)size);
  return rc;
}

static const char *const mem_options[] = {"mem-min-block", NULL};

static const struct nbdr_handler mem_handler = {
    .struct_size = sizeof(struct nbdr_handler),
    .abi_version = NBDR_HANDLER_ABI_VERSION,
    .name = "mem",
    .description = "backstores in the runner's memory (example handler)",
    .version = "1.0",
    .config_help = "mem-min-block=N  declare and check this I/O alignment (power of two; default any)",
    .options = mem_options,
    .load = mem_load,
    .unload = mem_unload,
    .create = mem_create,
    .remove = mem_remove,
    .open = mem_open,
    .close = mem_close,
    .submit = mem_submit,
    .resize = mem_resize,
};

NBDR_HANDLER_EXPORT const struct nbdr_handler *handler_init(const struct nbdr_services *svc) {
  (void)svc;
  return &mem_handler;
}
