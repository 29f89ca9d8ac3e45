// POSIX errno → WASI errno, per the preview1 errno table.
#pragma once

#include "wasi/abi.h"

#include <string>

namespace tern::wasi {

Errno errno_from_posix(int posix_errno);

// errno_from_posix(errno), for the line right after a failed syscall.
Errno last_errno();

// For error messages: strerror() of the POSIX errno that maps to `e`
// ("No such file or directory"); notcapable is "outside its preopened
// directory".
std::string errno_text(Errno e);

} // namespace tern::wasi
