// POSIX errno → WASI errno, per the preview1 errno table.
#pragma once

#include "wasi/abi.h"

namespace tern::wasi {

Errno errno_from_posix(int posix_errno);

// errno_from_posix(errno), for the line right after a failed syscall.
Errno last_errno();

} // namespace tern::wasi
