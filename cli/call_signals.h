// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// SIGINT and SIGTERM while nbd-cli or nbd-clid waits for a runner.
// libtirpc blocks every signal for the length of a call, so a Ctrl-C
// against a hung runner used to do nothing until the call timed out.
// Instead, one thread owns both signals for the whole process (every
// other thread blocks them): while a control call waits, a signal ends
// the process at once with kExitUnreachable and a message saying the
// change may have happened; otherwise it does what the program asked
// (nbd-clid stops its loop) or what it always did (nbd-cli: terminate).
#pragma once

#include <string>

namespace nbdr {

// Starts the signal thread. Call first in main, before any other thread
// exists, so that all inherit the blocked mask. A signal during a call
// ends the process with interrupted_exit. on_signal, when given, runs on
// the signal thread for a signal outside a call (it must only set flags
// or write to a descriptor); without it the signal's default action ends
// the process, as before. A signal ignored on entry stays ignored.
void StartCallSignalWatch(int interrupted_exit, void (*on_signal)(int signo) = nullptr);

// Marks a control call as waiting while it lives; what is printed if a
// signal ends it ("nbd-cli: interrupted while waiting for ...").
class WaitingCall {
 public:
  explicit WaitingCall(std::string what_may_have_happened);
  ~WaitingCall();
  WaitingCall(const WaitingCall&) = delete;
  WaitingCall& operator=(const WaitingCall&) = delete;
};

}  // namespace nbdr
