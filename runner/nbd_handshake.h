// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// NbdHandshake: the server half of the NBD fixed newstyle handshake
// (option negotiation) on one connection, through its Transport. Returns
// a plain value: the export to serve and what was agreed for it.
//
// Single-threaded: runs on one thread at a time, before transmission. A
// client that sends nothing for a while between options parks the
// handshake (Continue returns kParked) and the connection waits on the
// server's event loop without a thread; Continue then goes on where it
// stopped. The whole handshake must finish within handshake-timeout; the
// backend's time to open exports is not counted against it (up to an
// allowance).
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <unordered_set>

#include "runner/negotiated_export.h"
#include "runner/nbd_server.h"
#include "runner/transport.h"
#include "utils/status.h"

namespace nbdr {

class NbdHandshake {
 public:
  // transport, server and log_name must outlive the handshake. log_name is
  // the connection's name in logs ("conn#7 127.0.0.1:40312"); the
  // handshake appends the export a client asks for.
  NbdHandshake(Transport* transport, NbdServer* server, std::string* log_name);
  NbdHandshake(const NbdHandshake&) = delete;
  NbdHandshake& operator=(const NbdHandshake&) = delete;

  enum class Progress {
    kParked,        // nothing from the client for a while: call again once it sends
    kEnded,         // the connection ends here (logged)
    kTransmission,  // the client entered transmission: TakeResult()
  };
  // Negotiates until the client enters transmission (NBD_OPT_GO or
  // NBD_OPT_EXPORT_NAME), stops (left, aborted, broke the protocol, ran
  // out of time, was refused an EXPORT_NAME), or is silent for
  // handshake_park_ms between options.
  Progress Continue();
  // After kTransmission: the export, open, and what was agreed for it.
  NegotiatedExport TakeResult() { return std::move(result_); }
  // When the handshake's time runs out.
  std::chrono::steady_clock::time_point deadline() const { return deadline_; }

  // Continue until the end on the calling thread, waiting instead of
  // parking (tests, fuzzing): the export, or nullopt.
  std::optional<NegotiatedExport> Run();

 private:
  // The backend's time to open exports that a handshake does not count:
  // up to the handshake timeout, and at least this many seconds.
  static constexpr int kMinOpenAllowanceS = 60;
  static constexpr size_t kMaxOptionLength = 64 * 1024;
  // What each export a client lists adds to the deadline (once per
  // export, on its first successful NBD_OPT_INFO): nbdinfo --list sends
  // NBD_OPT_INFO for every export, and libnbd 1.14 leaves each
  // LIST_META_CONTEXT corked in the client's kernel for 200 ms.
  static constexpr std::chrono::seconds kListingCredit{1};

  // The client's flags, in in_: false when the connection ends.
  bool TakeClientFlags();
  // Receives into in_ until it holds need bytes (then nullopt): kParked
  // when the client is quiet (what came stays in in_), kEnded when it left
  // or the deadline passed (logged).
  std::optional<Progress> Gather(size_t need);
  // The limits on an option's header; false when the connection ends.
  bool AcceptOptionHeader(const nbd::OptionHeader& h);
  // Whether the client sent something within handshake_park_ms (or the
  // deadline passed, which the next receive reports): else park.
  bool ClientSpeaks();
  // One option: false when the connection ends here; *done when the client
  // enters transmission.
  bool HandleOption(uint32_t option, const std::string& data, bool* done);
  Status SendOptionReply(uint32_t option, uint32_t type, std::string_view data = {});
  Status SendOptionError(uint32_t option, uint32_t type, const std::string& message);
  bool HandleExportName(const std::string& name);
  bool HandleInfoOrGo(uint32_t option, const std::string& data, bool* enter_transmission);
  // Moves the deadline by kListingCredit the first time export_name was
  // given to NBD_OPT_INFO in this handshake.
  void CreditListing(const std::string& export_name);
  bool SendInfoReplies(uint32_t option, const nbd::InfoRequest& req);
  bool HandleMetaContext(uint32_t option, const std::string& data);
  bool HandleList(uint32_t option, const std::string& data);
  bool HandleStructuredReply(uint32_t option, const std::string& data);
  // NBD_OPT_STARTTLS: answers; Continue then runs the TLS handshake
  // (RunTlsHandshake). false when the connection ends.
  bool HandleStartTls(uint32_t option, const std::string& data);
  // The TLS handshake after STARTTLS, started or continued: nullopt once
  // done, kParked while the client is quiet, kEnded when it failed.
  std::optional<Progress> RunTlsHandshake();
  // With tls = require, an option before TLS: refused (EXPORT_NAME, which
  // cannot be refused, closes the connection). false when it closes.
  bool RefuseBeforeTls(uint32_t option);
  // Opens export name into result_; false with the reply error when refused.
  bool OpenExport(const std::string& name, nbd::OptionError* err);
  void NameConnection(const std::string& export_name);
  // Debug log of what an INFO, GO or EXPORT_NAME gives the client.
  void LogExportGiven(uint32_t option, bool base_allocation) const;

  Transport* const transport_;
  NbdServer* const server_;
  const NbdServerOptions& opts_;
  const TlsMode tls_mode_;  // off when no credentials were loaded
  std::string* const log_name_;
  const std::string base_name_;  // log_name_ before any export was named

  std::chrono::steady_clock::time_point deadline_;
  // How much more of the backend's time to open exports the deadline may
  // still be moved by (so that a client cannot hold a connection open
  // with option after option on a slow export).
  std::chrono::steady_clock::duration open_allowance_{};
  // Exports (hashes of their names) that earned kListingCredit: the
  // deadline grows at most by one credit per registered export.
  std::unordered_set<size_t> listed_;
  // Exports (hashes of their names) whose open time moved the deadline.
  std::unordered_set<size_t> opened_;
  enum class TlsHandshake { kNone, kToStart, kRunning };
  TlsHandshake tls_handshake_ = TlsHandshake::kNone;
  bool greeted_ = false;     // the greeting went out
  bool have_flags_ = false;  // the client's flags came in
  uint64_t received_ = 0;    // option bytes (headers and data) so far
  // What came of the client's flags, or of the option in hand: its header
  // until option_ is set, then its data.
  std::string in_;
  std::optional<nbd::OptionHeader> option_;
  bool no_zeroes_ = false;
  bool send_broken_ = false;
  std::string meta_export_;  // export named in SET_META_CONTEXT
  NegotiatedExport result_;
};

}  // namespace nbdr
