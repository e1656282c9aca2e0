// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// An export opened for NBD clients, and how one backstore's open is shared.
//
// OpenExport is a backstore opened through its handler; every connection
// to that backstore holds the same one (so CAN_MULTI_CONN is honest) and
// the handler's close runs when the last lets go. ExportSharing is the
// part of a registry entry that knows whether the backstore is open or
// being opened, so the registry can share an open, wait for one in
// progress, and refuse to delete or re-import what clients are using.
// ExportSharing is not thread-safe: its owner's lock guards it.
#pragma once

#include <atomic>
#include <memory>
#include <string>

#include "runner/backstore.h"
#include "runner/dirty_ranges.h"
#include "runner/export_stats.h"
#include "runner/handler_set.h"
#include "runner/write_gate.h"

namespace nbdr {

class OpenExport {
 public:
  OpenExport(const BackstoreRecord& record, const LoadedHandler* handler)
      : record_(record), handler_(handler) {}
  ~OpenExport();
  OpenExport(const OpenExport&) = delete;
  OpenExport& operator=(const OpenExport&) = delete;

  // Opens the record's object through the handler.
  Status Open();

  const BackstoreRecord& record() const { return record_; }
  const nbdr_export_info& info() const { return info_; }
  // The size served now: info().size until a resize changes it (requests
  // on connections opened before are checked against this one).
  uint64_t size() const { return size_.load(std::memory_order_acquire); }
  void SetSize(uint64_t size) { size_.store(size, std::memory_order_release); }
  const LoadedHandler& handler() const { return *handler_; }
  void* handle() const { return handle_; }
  // Every write-type request holds it shared from submit to completion; a
  // read-modify-write (handlers that need aligned requests) or a snapshot
  // holds it exclusively.
  WriteGate* write_gate() const { return &write_gate_; }
  // Sends the handler a flush and waits for it (what a quiesced export
  // does before a snapshot).
  Status Flush();
  // While a snapshot of it is copied (backstore_registry_snapshot.cc),
  // every write-type request marks its range in dirty once it is done,
  // before it leaves the write gate. Stop (null) only with the gate held
  // exclusively: no writer is marking then.
  void TrackWrites(DirtyRanges* dirty) { tracking_.store(dirty, std::memory_order_release); }
  // What its clients did (export_stats.h): the registry's counts for the
  // export, shared by every open of it; counts of its own until set.
  ExportStats* stats() const { return stats_.get(); }
  void SetStats(std::shared_ptr<ExportStats> stats) { stats_ = std::move(stats); }
  void NoteWritten(uint64_t offset, uint64_t length) const {
    if (DirtyRanges* d = tracking_.load(std::memory_order_acquire)) d->Mark(offset, length);
  }

 private:
  const BackstoreRecord record_;  // as it was when opened
  const LoadedHandler* const handler_;
  nbdr_export_info info_{};
  void* handle_ = nullptr;
  std::atomic<uint64_t> size_{0};
  mutable WriteGate write_gate_;
  std::atomic<DirtyRanges*> tracking_{nullptr};
  std::shared_ptr<ExportStats> stats_ = std::make_shared<ExportStats>();
};

class ExportSharing {
 public:
  // The open export, if a connection holds it.
  std::shared_ptr<OpenExport> Current() const { return open_.lock(); }
  bool IsOpen() const { return !open_.expired(); }
  bool IsOpening() const { return opening_ > 0; }
  // Open, or being opened: the backstore's object must stay as it is.
  bool InUse() const { return IsOpen() || IsOpening(); }

  // An open starts: until EndOpen, IsOpening() is true and others wait.
  void BeginOpen() { opening_++; }
  // The open started by BeginOpen ended; opened is null when it failed.
  void EndOpen(const std::shared_ptr<OpenExport>& opened);

  // Why a delete of export_name must wait, or "" when nothing uses it.
  std::string BusyReason(const std::string& export_name) const;

 private:
  int opening_ = 0;  // opens in progress (at most 1: later clients wait)
  std::weak_ptr<OpenExport> open_;
};

}  // namespace nbdr
