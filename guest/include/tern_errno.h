/* errno in threaded guests: included before every source of a threaded
 * guest (-include, cmake/WasmGuest.cmake's THREADS). wasi-libc's <errno.h>
 * declares errno _Thread_local, while its own errno (built without
 * atomics) is an ordinary global that code compiled for threads cannot
 * name (wasm-ld refuses the TLS relocation): errno is made to name it
 * through __tern_errno_location() (guest/src/errno.s). It is still one
 * errno shared by every thread (guest/include/pthread.h). */
#ifndef TERN_GUEST_ERRNO_H
#define TERN_GUEST_ERRNO_H

#include <errno.h>

#ifdef __cplusplus
extern "C" {
#endif
int* __tern_errno_location(void);
#ifdef __cplusplus
}
#endif

#undef errno
#define errno (*__tern_errno_location())

#endif
