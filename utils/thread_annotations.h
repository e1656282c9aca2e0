// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// Clang thread-safety annotations (no-ops on other compilers).
// Build with clang -Wthread-safety to have the compiler check locking.
#pragma once

#if defined(__clang__)
#define NBDR_TA(x) __attribute__((x))
#else
#define NBDR_TA(x)
#endif

#define CAPABILITY(x) NBDR_TA(capability(x))
#define SCOPED_CAPABILITY NBDR_TA(scoped_lockable)
#define GUARDED_BY(x) NBDR_TA(guarded_by(x))
#define PT_GUARDED_BY(x) NBDR_TA(pt_guarded_by(x))
#define REQUIRES(...) NBDR_TA(requires_capability(__VA_ARGS__))
#define ACQUIRE(...) NBDR_TA(acquire_capability(__VA_ARGS__))
#define RELEASE(...) NBDR_TA(release_capability(__VA_ARGS__))
#define TRY_ACQUIRE(...) NBDR_TA(try_acquire_capability(__VA_ARGS__))
#define EXCLUDES(...) NBDR_TA(locks_excluded(__VA_ARGS__))
#define NO_THREAD_SAFETY_ANALYSIS NBDR_TA(no_thread_safety_analysis)
