/* POSIX threads for wasm32-wasi guests on wasi-threads (tern's guest
 * library, guest/src/pthread.c): Debian's wasi-libc has no pthreads.
 *
 * Threads are started with the `wasi.thread-spawn` import; each runs
 * `wasi_thread_start` (guest/src/wasi_thread_start.s) in its own instance
 * of the module, on a stack and TLS block this library allocates. Locks
 * and waits are atomics on the shared memory and memory.atomic.wait32 /
 * notify. What a program needs to build with it (cmake/WasmGuest.cmake,
 * THREADS, does this):
 *
 *   clang --target=wasm32-wasi -O2 -nostartfiles -matomics -mbulk-memory
 *     -ftls-model=local-exec -Iguest/include -include guest/include/tern_errno.h
 *     prog.c guest/src/pthread.c guest/src/wasi_thread_start.s guest/src/errno.s
 *     -Wl,--import-memory,--shared-memory
 *     -Wl,--max-memory=N -Wl,--no-check-features
 *     -Wl,@guest/threads-wraps.rsp
 *
 * (-nostartfiles: the library has the program's _start; --no-check-features:
 * wasi-libc was not compiled for atomics; the --wrap options of
 * threads-wraps.rsp put malloc and friends under a lock, and each stdio
 * call under its FILE's recursive lock: flockfile/funlockfile/ftrylockfile
 * take the same one.) The rest of wasi-libc is not thread-safe: errno (one for all threads) and
 * other libc state (strtok, rand, the environment, opening and closing FILEs while another thread
 * walks them with fflush(NULL)) must be used by one thread at a time.
 *
 * Supported: create/join/self/equal, mutexes (normal; recursive and
 * error-checking types are refused with EINVAL), condition variables
 * (CLOCK_REALTIME timed waits included), barriers, pthread_once. Not:
 * detach, cancellation, pthread_exit, keys, rwlocks. */
#ifndef TERN_GUEST_PTHREAD_H
#define TERN_GUEST_PTHREAD_H

#include <sys/types.h> /* the pthread_* types (musl's layouts) */
#include <time.h>

#ifdef __cplusplus
extern "C" {
#endif

#define PTHREAD_MUTEX_NORMAL 0
#define PTHREAD_MUTEX_DEFAULT 0
#define PTHREAD_MUTEX_RECURSIVE 1
#define PTHREAD_MUTEX_ERRORCHECK 2
#define PTHREAD_MUTEX_INITIALIZER                                                                  \
  {                                                                                                \
    {                                                                                              \
      { 0 }                                                                                        \
    }                                                                                              \
  }
#define PTHREAD_COND_INITIALIZER                                                                   \
  {                                                                                                \
    {                                                                                              \
      { 0 }                                                                                        \
    }                                                                                              \
  }
#define PTHREAD_ONCE_INIT 0
#define PTHREAD_BARRIER_SERIAL_THREAD (-1)

int pthread_create(pthread_t* thread, const pthread_attr_t* attr, void* (*start)(void*), void* arg);
int pthread_join(pthread_t thread, void** result);
pthread_t pthread_self(void);
int pthread_equal(pthread_t a, pthread_t b);

int pthread_attr_init(pthread_attr_t* attr);
int pthread_attr_destroy(pthread_attr_t* attr);
int pthread_attr_setstacksize(pthread_attr_t* attr, size_t size);
int pthread_attr_getstacksize(const pthread_attr_t* attr, size_t* size);

int pthread_mutexattr_init(pthread_mutexattr_t* attr);
int pthread_mutexattr_destroy(pthread_mutexattr_t* attr);
int pthread_mutexattr_settype(pthread_mutexattr_t* attr, int type);
int pthread_mutex_init(pthread_mutex_t* mutex, const pthread_mutexattr_t* attr);
int pthread_mutex_destroy(pthread_mutex_t* mutex);
int pthread_mutex_lock(pthread_mutex_t* mutex);
int pthread_mutex_trylock(pthread_mutex_t* mutex);
int pthread_mutex_unlock(pthread_mutex_t* mutex);

int pthread_condattr_init(pthread_condattr_t* attr);
int pthread_condattr_destroy(pthread_condattr_t* attr);
int pthread_cond_init(pthread_cond_t* cond, const pthread_condattr_t* attr);
int pthread_cond_destroy(pthread_cond_t* cond);
int pthread_cond_wait(pthread_cond_t* cond, pthread_mutex_t* mutex);
int pthread_cond_timedwait(pthread_cond_t* cond, pthread_mutex_t* mutex,
                           const struct timespec* abstime);
int pthread_cond_signal(pthread_cond_t* cond);
int pthread_cond_broadcast(pthread_cond_t* cond);

int pthread_barrier_init(pthread_barrier_t* barrier, const pthread_barrierattr_t* attr,
                         unsigned count);
int pthread_barrier_destroy(pthread_barrier_t* barrier);
int pthread_barrier_wait(pthread_barrier_t* barrier);

int pthread_once(pthread_once_t* once, void (*init)(void));

#ifdef __cplusplus
}
#endif

#endif
