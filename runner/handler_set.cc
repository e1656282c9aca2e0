// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// Loading and calling handler plugins; see handler_set.h.
#include "runner/handler_set.h"

#include <dirent.h>
#include <dlfcn.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdarg>
#include <cstddef>
#include <cstring>
#include <set>
#include <thread>

#include "utils/log.h"
#include "utils/names.h"

namespace nbdr {

struct LoadedHandler::Services {
  nbdr_services table{};
  std::string name;
  const std::map<std::string, std::string>* options = nullptr;
  // What get_option answers: the runner's offered options, and once the
  // handler's descriptor is known, the options it declared.
  std::set<std::string> readable{NBDR_OPTION_THREADS, NBDR_OPTION_LOG_DIR};
};

namespace {

constexpr size_t kErrLen = LoadedHandler::kErrLen;
constexpr int kProbeTimeoutMs = 30000;

void ServiceLog(void* ctx, int level, const char* context, const char* fmt, ...) {
  auto* svc = static_cast<LoadedHandler::Services*>(ctx);
  LogLevel lvl = level <= NBDR_LOG_ERROR     ? LogLevel::kError
                 : level == NBDR_LOG_WARNING ? LogLevel::kWarning
                 : level == NBDR_LOG_INFO    ? LogLevel::kInfo
                                             : LogLevel::kDebug;
  Logger& lg = Logger::Default();
  if (!lg.Enabled(lvl)) return;
  std::string ctx_str = svc ? svc->name : "handler";
  if (context && *context) ctx_str.append(" ").append(context);
  va_list ap;
  va_start(ap, fmt);
  lg.LogV(lvl, ctx_str, fmt, ap);
  va_end(ap);
}

const char* ServiceGetOption(void* ctx, const char* name) {
  auto* svc = static_cast<LoadedHandler::Services*>(ctx);
  if (!svc || !svc->options || !name || !svc->readable.count(name)) return nullptr;
  auto it = svc->options->find(name);
  return it == svc->options->end() ? nullptr : it->second.c_str();
}

// A services table for the probe child: logs nothing.
void SilentLog(void*, int, const char*, const char*, ...) {}

// Loads path in a child process and calls handler_init there. Returns an
// empty string when that worked, else why not.
std::string ProbeInChild(const std::string& path) {
  pid_t pid = fork();
  if (pid < 0) return std::string("fork for probe: ") + strerror(errno);
  if (pid == 0) {
    alarm(kProbeTimeoutMs / 1000);
    void* dl = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!dl) _exit(10);
    auto init = reinterpret_cast<nbdr_handler_init_fn>(dlsym(dl, NBDR_HANDLER_INIT_SYMBOL));
    if (!init) _exit(11);
    nbdr_services svc{};
    svc.struct_size = sizeof svc;
    svc.abi_version = NBDR_HANDLER_ABI_VERSION;
    svc.log = SilentLog;
    svc.get_option = [](void*, const char*) -> const char* { return nullptr; };
    const nbdr_handler* h = init(&svc);
    _exit(h ? 0 : 12);
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return std::string("waitpid: ") + strerror(errno);
  }
  if (WIFSIGNALED(status)) {
    int sig = WTERMSIG(status);
    return sig == SIGALRM ? "handler_init did not return within 30 s"
                          : std::string("crashed while loading (signal ") + strsignal(sig) + ")";
  }
  int code = WEXITSTATUS(status);
  // Exit codes 10-12 are diagnosed again, with details, by the real load.
  if (code == 0 || (code >= 10 && code <= 12)) return "";
  // Anything else means the child died inside the plugin (a sanitizer
  // turns a crash into an exit status).
  return "crashed while loading (exit status " + std::to_string(code) + ")";
}

}  // namespace

Status LoadedHandler::HandlerError(int rc, const char* err, const std::string& what) {
  std::string msg = err && *err ? err : strerror(rc);
  return Status::Error(rc, msg.empty() ? what : msg);
}

LoadedHandler::~LoadedHandler() {
  if (desc_ && state_ && desc_->unload) desc_->unload(state_);
  if (dl_) dlclose(dl_);
}

Status LoadedHandler::Create(const std::string& key, const nbdr_create_params& params) const {
  char err[kErrLen] = "";
  int rc = desc_->create(state_, key.c_str(), &params, err, sizeof err);
  if (rc != 0) return HandlerError(rc, err, "create " + key);
  return Status();
}

Status LoadedHandler::Remove(const std::string& key) const {
  char err[kErrLen] = "";
  int rc = desc_->remove(state_, key.c_str(), err, sizeof err);
  if (rc != 0) return HandlerError(rc, err, "delete " + key);
  return Status();
}

bool LoadedHandler::CanIdentify() const {
  return desc_->struct_size >= offsetof(nbdr_handler, identify) + sizeof desc_->identify &&
         desc_->identify != nullptr;
}

Expected<std::string> LoadedHandler::Identify(const std::string& key) const {
  if (!CanIdentify()) return std::string();
  char err[kErrLen] = "";
  char buf[1024] = "";
  int rc = desc_->identify(state_, key.c_str(), buf, sizeof buf, err, sizeof err);
  if (rc != 0) return HandlerError(rc, err, "identify " + key);
  buf[sizeof buf - 1] = '\0';
  return std::string(buf);
}

Status LoadedHandler::TakeOver(const std::string& key) const {
  if (desc_->struct_size < offsetof(nbdr_handler, take_over) + sizeof desc_->take_over ||
      !desc_->take_over)
    return Status::Error(ENOTSUP, "the " + name_ + " handler has no fence of its own");
  char err[kErrLen] = "";
  int rc = desc_->take_over(state_, key.c_str(), err, sizeof err);
  if (rc != 0) return HandlerError(rc, err, "take over " + key);
  return Status();
}

Status LoadedHandler::Resize(const std::string& key, uint64_t size, bool may_shrink) const {
  if (desc_->struct_size < offsetof(nbdr_handler, resize) + sizeof desc_->resize || !desc_->resize)
    return Status::Error(ENOTSUP, "the " + name_ + " handler cannot resize its backstores");
  char err[kErrLen] = "";
  int rc = desc_->resize(state_, key.c_str(), size, may_shrink ? 1 : 0, err, sizeof err);
  if (rc != 0) return HandlerError(rc, err, "resize " + key);
  return Status();
}

Expected<uint64_t> LoadedHandler::ExportSize(void* export_handle) const {
  if (desc_->struct_size < offsetof(nbdr_handler, export_size) + sizeof desc_->export_size ||
      !desc_->export_size)
    return Status::Error(ENOTSUP, "the " + name_ + " handler cannot tell an open export's size");
  char err[kErrLen] = "";
  uint64_t size = 0;
  int rc = desc_->export_size(export_handle, &size, err, sizeof err);
  if (rc != 0) return HandlerError(rc, err, "size of an open export");
  return size;
}

namespace {

bool PowerOfTwo(uint32_t v) { return v && !(v & (v - 1)); }

// What is wrong with the block sizes a handler's open reported, or "".
std::string ImpossibleBlockSizes(const nbdr_export_info& info) {
  if (info.min_block && (!PowerOfTwo(info.min_block) || info.min_block > 65536))
    return "minimum block size " + std::to_string(info.min_block) +
           " (it must be a power of two up to 64 KiB)";
  if (info.preferred_block &&
      (!PowerOfTwo(info.preferred_block) || info.preferred_block < info.min_block))
    return "preferred block size " + std::to_string(info.preferred_block) +
           " (it must be a power of two, at least the minimum)";
  // Room for a realigned request (realigned_io.h): two blocks more.
  if (info.max_payload && info.max_payload < std::max<uint32_t>(info.min_block, 1) * 4)
    return "maximum payload " + std::to_string(info.max_payload) +
           " (it must be at least four minimum blocks)";
  return "";
}

}  // namespace

Status LoadedHandler::Open(const std::string& key, int mode, nbdr_export_info* info,
                           void** export_handle) const {
  char err[kErrLen] = "";
  *info = nbdr_export_info{};
  info->struct_size = sizeof *info;
  int rc = desc_->open(state_, key.c_str(), mode, info, export_handle, err, sizeof err);
  if (rc != 0) return HandlerError(rc, err, "open " + key);
  if (std::string why = ImpossibleBlockSizes(*info); !why.empty()) {
    desc_->close(*export_handle);
    *export_handle = nullptr;
    return Status::Error(EPROTO, "handler " + name() + " opened " + key + " with " + why);
  }
  return Status();
}

HandlerSet::HandlerSet(std::map<std::string, std::string> options) : options_(std::move(options)) {}

HandlerSet::~HandlerSet() { UnloadAll(); }

Status HandlerSet::LoadDirectory(const std::string& dir, Mode mode) {
  struct DirCloser {
    void operator()(DIR* d) const { closedir(d); }
  };
  std::unique_ptr<DIR, DirCloser> d(opendir(dir.c_str()));
  if (!d) return PosixError("handler directory " + dir);
  std::vector<std::string> names;
  while (dirent* e = readdir(d.get())) {
    std::string n = e->d_name;
    const std::string suffix = "_handler.so";
    if (n.rfind("lib", 0) == 0 && n.size() > suffix.size() + 3 &&
        n.compare(n.size() - suffix.size(), suffix.size(), suffix) == 0)
      names.push_back(n);
  }
  std::sort(names.begin(), names.end());
  // Every probe forks before any handler is loaded: a loaded handler starts
  // threads, and a child forked from a multi-threaded process may deadlock
  // in dlopen (a lock another thread held at fork time).
  std::vector<std::string> probed;
  for (const auto& n : names) {
    std::string path = dir + "/" + n;
    std::string why = ProbeInChild(path);
    if (why.empty())
      probed.push_back(path);
    else
      LOG_ERROR("handlers", "%s: not loaded: %s", path.c_str(), why.c_str());
  }
  std::string refused;
  for (const auto& path : probed) {
    bool refused_config = false;
    Status s = LoadProbed(path, mode, &refused_config);
    if (s.ok()) continue;
    LOG_ERROR("handlers", "%s: not loaded: %s", path.c_str(), s.message().c_str());
    if (refused_config) refused += (refused.empty() ? "" : "; ") + s.message();
  }
  if (!refused.empty())
    return Status::Error(EINVAL, "refusing to start: " + refused +
                                     " (fix the option, or remove "
                                     "the handler's .so from " +
                                     dir + " if it is not wanted)");
  return Status();
}

Status HandlerSet::LoadProbed(const std::string& path, Mode mode, bool* refused_config) {
  auto h = std::make_unique<LoadedHandler>();
  h->path_ = path;
  h->dl_ = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!h->dl_) return Status::Error(EINVAL, std::string("dlopen: ") + dlerror());
  auto init = reinterpret_cast<nbdr_handler_init_fn>(dlsym(h->dl_, NBDR_HANDLER_INIT_SYMBOL));
  if (!init) return Status::Error(EINVAL, "no handler_init symbol");

  h->services_ = std::make_unique<LoadedHandler::Services>();
  h->services_->name = path.substr(path.rfind('/') + 1);
  h->services_->options = &options_;
  nbdr_services& svc = h->services_->table;
  svc.struct_size = sizeof svc;
  svc.abi_version = NBDR_HANDLER_ABI_VERSION;
  svc.ctx = h->services_.get();
  svc.log = ServiceLog;
  svc.get_option = ServiceGetOption;

  const nbdr_handler* desc = init(&svc);
  if (!desc) return Status::Error(EINVAL, "handler_init returned NULL");
  if (desc->abi_version != NBDR_HANDLER_ABI_VERSION)
    return Status::Error(EINVAL, "built for handler ABI version " +
                                     std::to_string(desc->abi_version) + ", this runner speaks " +
                                     std::to_string(NBDR_HANDLER_ABI_VERSION));
  if (desc->struct_size < NBDR_HANDLER_MIN_STRUCT_SIZE)
    return Status::Error(EINVAL, "descriptor too small (" + std::to_string(desc->struct_size) +
                                     " bytes, need " +
                                     std::to_string(NBDR_HANDLER_MIN_STRUCT_SIZE) + ")");
  if (!desc->name) return Status::Error(EINVAL, "descriptor has no name");
  if (Status s = ValidateType(desc->name); !s.ok()) return s;
  if (!desc->load || !desc->unload || !desc->create || !desc->remove || !desc->open ||
      !desc->close || !desc->submit)
    return Status::Error(
        EINVAL, std::string("handler '") + desc->name + "' leaves a required callback NULL");
  if (Find(desc->name))
    return Status::Error(EEXIST, std::string("a handler of type '") + desc->name +
                                     "' is already loaded from " + Find(desc->name)->path());
  h->services_->name = desc->name;
  for (const char* const* o = desc->options; o && *o; o++) h->services_->readable.insert(*o);
  h->name_ = desc->name;
  h->desc_ = desc;
  if (mode == Mode::kDescribe) {
    handlers_.push_back(std::move(h));
    return Status();
  }
  char err[kErrLen] = "";
  void* state = nullptr;
  int rc = desc->load(&svc, &state, err, sizeof err);
  if (rc != 0) {
    *refused_config = true;
    return Status::Error(rc, std::string("handler '") + desc->name + "': " +
                                 LoadedHandler::HandlerError(rc, err, "load failed").message());
  }
  h->state_ = state;
  LOG_INFO("handlers", "loaded handler '%s' %s from %s", desc->name,
           desc->version ? desc->version : "", path.c_str());
  handlers_.push_back(std::move(h));
  return Status();
}

void HandlerSet::UnloadAll() {
  while (!handlers_.empty()) handlers_.pop_back();
}

const LoadedHandler* HandlerSet::Find(const std::string& type) const {
  for (const auto& h : handlers_)
    if (h->name() == type) return h.get();
  return nullptr;
}

std::string HandlerSet::OptionsHelp() const {
  std::string out;
  for (const auto& h : handlers_) {
    const nbdr_handler& d = h->desc();
    out += "  [" + h->name() + "]" +
           (d.description && *d.description ? std::string(" ") + d.description : std::string()) +
           "\n";
    // config_help: "name=VALUE  what it does" per line, shown as options.
    std::string help = d.config_help ? d.config_help : "";
    size_t pos = 0;
    while (pos < help.size()) {
      size_t end = help.find('\n', pos);
      if (end == std::string::npos) end = help.size();
      std::string line = help.substr(pos, end - pos);
      pos = end + 1;
      if (line.empty()) continue;
      out += (line[0] == ' ' ? "    " : "  --") + line + "\n";  // continuations align
    }
  }
  return out;
}

std::vector<std::string> HandlerSet::Types() const {
  std::vector<std::string> out;
  for (const auto& h : handlers_) out.push_back(h->name());
  return out;
}

std::set<std::string> HandlerSet::DeclaredOptions() const {
  std::set<std::string> out;
  for (const auto& h : handlers_) {
    for (const char* const* o = h->desc().options; o && *o; o++) out.insert(*o);
  }
  return out;
}

}  // namespace nbdr
