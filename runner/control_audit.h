// SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
// The control plane's audit trail: one log line (context "audit") for
// every call that changes something (create, import, delete, create with
// auth, access changes, map, mapped, unmap), allowed or refused, with who
// called (peer address and identity), what (procedure, type, key, device,
// client host, identities) and the outcome. Every value from the peer is
// quoted and escaped (Printable): a key with a newline cannot forge a line.
// Thread-safe.
#pragma once

#include <cstdint>

#include "runner/control_service.h"

namespace nbdr {

// Whether proc with these (decoded) arguments changes anything.
bool IsAuditedCall(uint32_t proc, const void* args);

// Logs the audit line of a finished call (result filled in).
void AuditCall(const RpcCaller& caller, uint32_t proc, const void* args, void* result);

}  // namespace nbdr
