// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// The part of BackstoreRegistry that keeps what each export's clients did
// (export_stats.h): one ExportStats per export name, made when the export
// is first opened, shared by its opens, dropped with the backstore (its
// snapshots' with it), so that metrics carry one series set per export.
#include "runner/backstore_registry.h"

namespace nbdr {

std::shared_ptr<ExportStats> BackstoreRegistry::StatsFor(const std::string& export_name) {
  MutexLock l(&mu_);
  auto& stats = stats_[export_name];
  if (!stats) stats = std::make_shared<ExportStats>();
  return stats;
}

std::vector<std::pair<std::string, std::shared_ptr<ExportStats>>> BackstoreRegistry::AllStats()
    const {
  MutexLock l(&mu_);
  return {stats_.begin(), stats_.end()};
}

void BackstoreRegistry::ForgetStatsLocked(const std::string& name) {
  stats_.erase(name);
  // Its snapshots' too; a registered backstore KEY@NAME is no snapshot.
  const std::string snapshots = name + "@";
  for (auto it = stats_.lower_bound(snapshots);
       it != stats_.end() && it->first.compare(0, snapshots.size(), snapshots) == 0;)
    it = entries_.count(it->first) ? std::next(it) : stats_.erase(it);
}

std::map<std::string, size_t> BackstoreRegistry::CountByType() const {
  std::map<std::string, size_t> counts;
  MutexLock l(&mu_);
  for (const auto& [name, e] : entries_)
    if (!e.creating) counts[e.record.type]++;
  return counts;
}

}  // namespace nbdr
