// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// SIGINT and SIGTERM while waiting for a runner; see call_signals.h.
#include "cli/call_signals.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include <mutex>
#include <thread>

namespace nbdr {

namespace {

std::mutex g_mu;
int g_waiting_calls = 0;     // guarded by g_mu
std::string g_waiting_what;  // guarded by g_mu
int g_interrupted_exit = 1;  // set before the thread starts
void (*g_on_signal)(int) = nullptr;

// What a signal during a call prints, or "" when no call waits.
std::string WaitingCallMessage() {
  std::lock_guard<std::mutex> l(g_mu);
  return g_waiting_calls > 0 ? g_waiting_what : std::string();
}

[[noreturn]] void EndTheCall(int signo, const std::string& what) {
  std::string line = std::string(program_invocation_short_name) + ": " + strsignal(signo) +
                     " while waiting: " + what + "\n";
  ssize_t ignored = write(STDERR_FILENO, line.data(), line.size());
  (void)ignored;
  _exit(g_interrupted_exit);
}

[[noreturn]] void DefaultAction(int signo) {
  signal(signo, SIG_DFL);
  sigset_t one;
  sigemptyset(&one);
  sigaddset(&one, signo);
  pthread_sigmask(SIG_UNBLOCK, &one, nullptr);
  raise(signo);  // terminates the process
  _exit(128 + signo);
}

void WatchSignals(sigset_t set) {
  for (;;) {
    int signo = 0;
    if (sigwait(&set, &signo) != 0) continue;
    if (std::string what = WaitingCallMessage(); !what.empty()) EndTheCall(signo, what);
    if (!g_on_signal) DefaultAction(signo);
    g_on_signal(signo);
  }
}

}  // namespace

void StartCallSignalWatch(int interrupted_exit, void (*on_signal)(int)) {
  g_interrupted_exit = interrupted_exit;
  g_on_signal = on_signal;
  sigset_t set;
  sigemptyset(&set);
  for (int signo : {SIGINT, SIGTERM}) {
    // One ignored on entry (nohup, a shell's background job) stays so.
    struct sigaction old {};
    if (sigaction(signo, nullptr, &old) == 0 && old.sa_handler == SIG_IGN) continue;
    sigaddset(&set, signo);
  }
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  std::thread(WatchSignals, set).detach();
}

WaitingCall::WaitingCall(std::string what_may_have_happened) {
  std::lock_guard<std::mutex> l(g_mu);
  g_waiting_calls++;
  g_waiting_what = std::move(what_may_have_happened);
}

WaitingCall::~WaitingCall() {
  std::lock_guard<std::mutex> l(g_mu);
  g_waiting_calls--;
}

}  // namespace nbdr
