/* POSIX threads on wasi-threads for wasm32-wasi guests (guest/include/pthread.h
 * says how to build with it and what it covers).
 *
 * Every lock word is an int in the shared memory: a thread that must wait
 * sleeps in memory.atomic.wait32 on it, and whoever changes it so that a
 * waiter could proceed wakes it with memory.atomic.notify. */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The wasi-threads ABI: starts a thread that calls wasi_thread_start(tid,
 * start_arg) in a new instance; returns its TID (> 0) or a negative errno. */
__attribute__((import_module("wasi"), import_name("thread-spawn"))) int32_t
__tern_thread_spawn(void* start_arg);

/* Defined by wasm-ld for a shared memory: copies the TLS image into `block`
 * and makes it the calling thread's (__tls_base). */
extern void __wasm_init_tls(void* block);

/* One thread. wasi_thread_start.s reads stack_top and writes done: keep
 * them at offsets 0 and 4. */
struct __pthread {
  uint32_t stack_top;
  int done; /* 1 once the thread's function has returned; notified */
  void* (*start)(void*);
  void* arg;
  void* result;
  void* stack;
  void* tls;
  int tid; /* 0: the main thread */
};
_Static_assert(offsetof(struct __pthread, stack_top) == 0, "wasi_thread_start reads offset 0");
_Static_assert(offsetof(struct __pthread, done) == 4, "wasi_thread_start writes offset 4");

enum { kDefaultStackSize = 128 * 1024, kStackAlign = 16 };

static _Thread_local struct __pthread* self;
static struct __pthread main_thread;

/* --- Waiting on a word ------------------------------------------------------------ */

static int load(volatile int* p) {
  return __atomic_load_n(p, __ATOMIC_SEQ_CST);
}
static void store(volatile int* p, int v) {
  __atomic_store_n(p, v, __ATOMIC_SEQ_CST);
}
static int exchange(volatile int* p, int v) {
  return __atomic_exchange_n(p, v, __ATOMIC_SEQ_CST);
}
static int compare_exchange(volatile int* p, int expected, int desired) {
  __atomic_compare_exchange_n(p, &expected, desired, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
  return expected; /* the value seen */
}
static int fetch_add(volatile int* p, int v) {
  return __atomic_fetch_add(p, v, __ATOMIC_SEQ_CST);
}
/* Sleeps while *p == expected, at most timeout_ns (< 0: no limit); 2 means
 * timed out. */
static int wait_on(volatile int* p, int expected, int64_t timeout_ns) {
  return __builtin_wasm_memory_atomic_wait32((int*)p, expected, timeout_ns);
}
static void wake(volatile int* p, unsigned count) {
  __builtin_wasm_memory_atomic_notify((int*)p, count);
}

/* --- Mutexes: 0 free, 1 locked, 2 locked with (possible) waiters ------------------ */

static volatile int* mutex_word(pthread_mutex_t* m) {
  return &m->__u.__vi[0];
}

static void lock_word(volatile int* w) {
  int c = compare_exchange(w, 0, 1);
  if (c == 0) return;
  if (c != 2) c = exchange(w, 2);
  while (c != 0) {
    wait_on(w, 2, -1);
    c = exchange(w, 2);
  }
}

static void unlock_word(volatile int* w) {
  if (fetch_add(w, -1) != 1) {
    store(w, 0);
    wake(w, 1);
  }
}

int pthread_mutexattr_init(pthread_mutexattr_t* a) {
  a->__attr = PTHREAD_MUTEX_NORMAL;
  return 0;
}
int pthread_mutexattr_destroy(pthread_mutexattr_t* a) {
  (void)a;
  return 0;
}
int pthread_mutexattr_settype(pthread_mutexattr_t* a, int type) {
  if (type < PTHREAD_MUTEX_NORMAL || type > PTHREAD_MUTEX_ERRORCHECK) return EINVAL;
  a->__attr = (unsigned)type;
  return 0;
}
int pthread_mutex_init(pthread_mutex_t* m, const pthread_mutexattr_t* a) {
  if (a && a->__attr != PTHREAD_MUTEX_NORMAL) return EINVAL; /* only normal mutexes */
  memset(m, 0, sizeof *m);
  return 0;
}
int pthread_mutex_destroy(pthread_mutex_t* m) {
  return load(mutex_word(m)) == 0 ? 0 : EBUSY;
}
int pthread_mutex_lock(pthread_mutex_t* m) {
  lock_word(mutex_word(m));
  return 0;
}
int pthread_mutex_trylock(pthread_mutex_t* m) {
  return compare_exchange(mutex_word(m), 0, 1) == 0 ? 0 : EBUSY;
}
int pthread_mutex_unlock(pthread_mutex_t* m) {
  unlock_word(mutex_word(m));
  return 0;
}

/* --- Condition variables: a sequence number that every signal changes ------------- */

static volatile int* cond_seq(pthread_cond_t* c) {
  return &c->__u.__vi[0];
}

int pthread_condattr_init(pthread_condattr_t* a) {
  a->__attr = 0;
  return 0;
}
int pthread_condattr_destroy(pthread_condattr_t* a) {
  (void)a;
  return 0;
}
int pthread_cond_init(pthread_cond_t* c, const pthread_condattr_t* a) {
  (void)a;
  memset(c, 0, sizeof *c);
  return 0;
}
int pthread_cond_destroy(pthread_cond_t* c) {
  (void)c;
  return 0;
}

/* The sequence number is read before the mutex is released: a signal after
 * that changes it, so the wait returns at once instead of missing it. */
static int cond_wait_for(pthread_cond_t* c, pthread_mutex_t* m, int64_t timeout_ns) {
  int seq = load(cond_seq(c));
  unlock_word(mutex_word(m));
  int r = wait_on(cond_seq(c), seq, timeout_ns);
  /* Relocked as contended: other waiters may have been woken with us. */
  volatile int* w = mutex_word(m);
  while (exchange(w, 2) != 0) wait_on(w, 2, -1);
  return r == 2 ? ETIMEDOUT : 0;
}

int pthread_cond_wait(pthread_cond_t* c, pthread_mutex_t* m) {
  return cond_wait_for(c, m, -1);
}

int pthread_cond_timedwait(pthread_cond_t* c, pthread_mutex_t* m, const struct timespec* abstime) {
  if (abstime->tv_nsec < 0 || abstime->tv_nsec >= 1000000000) return EINVAL;
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  int64_t ns =
      (int64_t)(abstime->tv_sec - now.tv_sec) * 1000000000 + (abstime->tv_nsec - now.tv_nsec);
  if (ns <= 0) return ETIMEDOUT;
  return cond_wait_for(c, m, ns);
}

int pthread_cond_signal(pthread_cond_t* c) {
  fetch_add(cond_seq(c), 1);
  wake(cond_seq(c), 1);
  return 0;
}

int pthread_cond_broadcast(pthread_cond_t* c) {
  fetch_add(cond_seq(c), 1);
  wake(cond_seq(c), UINT_MAX);
  return 0;
}

/* --- Barriers: [0] threads per round, [1] arrived this round, [2] round ----------- */

int pthread_barrier_init(pthread_barrier_t* b, const pthread_barrierattr_t* a, unsigned count) {
  (void)a;
  if (count == 0 || count > INT_MAX) return EINVAL;
  memset(b, 0, sizeof *b);
  b->__u.__vi[0] = (int)count;
  return 0;
}
int pthread_barrier_destroy(pthread_barrier_t* b) {
  (void)b;
  return 0;
}

/* The last to arrive resets the count before it opens the next round, so
 * that no thread of the next round can arrive before the reset. */
int pthread_barrier_wait(pthread_barrier_t* b) {
  volatile int* arrived = &b->__u.__vi[1];
  volatile int* round = &b->__u.__vi[2];
  int mine = load(round);
  if (fetch_add(arrived, 1) + 1 == b->__u.__vi[0]) {
    store(arrived, 0);
    fetch_add(round, 1);
    wake(round, UINT_MAX);
    return PTHREAD_BARRIER_SERIAL_THREAD;
  }
  while (load(round) == mine) wait_on(round, mine, -1);
  return 0;
}

/* --- pthread_once: 0 not run, 1 running, 2 done ---------------------------------- */

int pthread_once(pthread_once_t* once, void (*init)(void)) {
  volatile int* w = once;
  if (load(w) == 2) return 0;
  if (compare_exchange(w, 0, 1) == 0) {
    init();
    store(w, 2);
    wake(w, UINT_MAX);
    return 0;
  }
  while (load(w) != 2) wait_on(w, 1, -1);
  return 0;
}

/* --- Threads ---------------------------------------------------------------------- */

int pthread_attr_init(pthread_attr_t* a) {
  memset(a, 0, sizeof *a);
  return 0;
}
int pthread_attr_destroy(pthread_attr_t* a) {
  (void)a;
  return 0;
}
int pthread_attr_setstacksize(pthread_attr_t* a, size_t size) {
  if (size < 16 * 1024) return EINVAL;
  a->__u.__s[0] = size;
  return 0;
}
int pthread_attr_getstacksize(const pthread_attr_t* a, size_t* size) {
  *size = a->__u.__s[0] ? a->__u.__s[0] : kDefaultStackSize;
  return 0;
}

static void free_thread(struct __pthread* t) {
  free(t->stack);
  free(t->tls);
  free(t);
}

int pthread_create(pthread_t* out, const pthread_attr_t* attr, void* (*start)(void*), void* arg) {
  size_t stack_size = kDefaultStackSize;
  if (attr) pthread_attr_getstacksize(attr, &stack_size);
  stack_size = (stack_size + kStackAlign - 1) & ~(size_t)(kStackAlign - 1);
  struct __pthread* t = calloc(1, sizeof *t);
  if (!t) return EAGAIN;
  t->start = start;
  t->arg = arg;
  t->stack = aligned_alloc(kStackAlign, stack_size);
  size_t tls_size = __builtin_wasm_tls_size();
  size_t tls_align = __builtin_wasm_tls_align();
  if (tls_align < sizeof(void*)) tls_align = sizeof(void*);
  t->tls = aligned_alloc(tls_align, (tls_size + tls_align - 1) & ~(tls_align - 1));
  if (!t->stack || !t->tls) {
    free_thread(t);
    return EAGAIN;
  }
  t->stack_top = (uint32_t)(uintptr_t)t->stack + (uint32_t)stack_size;
  int32_t tid = __tern_thread_spawn(t);
  if (tid < 0) {
    free_thread(t);
    return EAGAIN;
  }
  /* The thread may already run: it does not read tid. */
  t->tid = tid;
  *out = t;
  return 0;
}

/* Called by wasi_thread_start on the new thread's stack; when it returns,
 * wasi_thread_start marks the thread done. */
void __tern_pthread_run(int32_t tid, struct __pthread* t) {
  (void)tid;
  __wasm_init_tls(t->tls);
  self = t;
  t->result = t->start(t->arg);
}

int pthread_join(pthread_t t, void** result) {
  if (t == self || t == &main_thread) return EDEADLK;
  while (load(&t->done) == 0) wait_on(&t->done, 0, -1);
  if (result) *result = t->result;
  free_thread(t);
  return 0;
}

pthread_t pthread_self(void) {
  return self;
}

int pthread_equal(pthread_t a, pthread_t b) {
  return a == b;
}

/* The main thread's TLS block and identity, before main() runs. */
__attribute__((constructor(101))) static void init_main_thread(void) {
  size_t tls_align = __builtin_wasm_tls_align();
  if (tls_align < sizeof(void*)) tls_align = sizeof(void*);
  size_t size = (__builtin_wasm_tls_size() + tls_align - 1) & ~(tls_align - 1);
  void* block = aligned_alloc(tls_align, size ? size : tls_align);
  if (!block) abort();
  __wasm_init_tls(block);
  main_thread.tls = block;
  self = &main_thread;
}

/* --- The program's entry ------------------------------------------------------------ */

/* Linked with -nostartfiles, so this is the _start, not wasi-libc's crt1:
 * wasm-ld wraps every export of a program that uses crt1's _start in calls
 * of the constructors and destructors, wasi_thread_start included, which
 * would run them again on each new thread (before its stack is set). */
extern void __wasm_call_ctors(void);
extern void __wasm_call_dtors(void);
extern int __main_void(void);

__attribute__((export_name("_start"))) void _start(void) {
  __wasm_call_ctors();
  int status = __main_void();
  __wasm_call_dtors();
  if (status != 0) exit(status);
}

/* --- malloc under a lock (the program is linked with --wrap for these) ------------ */

static volatile int heap_lock;

void* __real_malloc(size_t);
void __real_free(void*);
void* __real_calloc(size_t, size_t);
void* __real_realloc(void*, size_t);
void* __real_aligned_alloc(size_t, size_t);
int __real_posix_memalign(void**, size_t, size_t);

#define LOCKED(call)                                                                               \
  do {                                                                                             \
    lock_word(&heap_lock);                                                                         \
    __typeof__(call) r = call;                                                                     \
    unlock_word(&heap_lock);                                                                       \
    return r;                                                                                      \
  } while (0)

void* __wrap_malloc(size_t n) {
  LOCKED(__real_malloc(n));
}
void* __wrap_calloc(size_t n, size_t size) {
  LOCKED(__real_calloc(n, size));
}
void* __wrap_realloc(void* p, size_t n) {
  LOCKED(__real_realloc(p, n));
}
void* __wrap_aligned_alloc(size_t align, size_t n) {
  LOCKED(__real_aligned_alloc(align, n));
}
int __wrap_posix_memalign(void** out, size_t align, size_t n) {
  LOCKED(__real_posix_memalign(out, align, n));
}
void __wrap_free(void* p) {
  lock_word(&heap_lock);
  __real_free(p);
  unlock_word(&heap_lock);
}

/* --- stdio under a lock per FILE (the program is linked with --wrap for these) ----- */

/* wasi-libc was built without threads: its FILEs have no locks. Each
 * stdio call of the program takes a recursive lock for its FILE (stdin,
 * stdout and stderr their own, any other FILE one of the rest by its
 * address), so lines printed by several threads come out whole, and a
 * thread blocked in fgets on stdin does not hold up another's printf. */
enum { kFileLocks = 16 };
static struct file_lock {
  volatile int word; /* lock_word's states */
  struct __pthread* owner;
  int depth;
} file_locks[kFileLocks];

static struct file_lock* lock_of(FILE* f) {
  if (f == stdin) return &file_locks[0];
  if (f == stdout) return &file_locks[1];
  if (f == stderr) return &file_locks[2];
  return &file_locks[3 + ((uintptr_t)f >> 4) % (kFileLocks - 3)];
}

static struct __pthread* current(void) {
  return self ? self : &main_thread; /* self is set by a constructor */
}

void flockfile(FILE* f) {
  struct file_lock* l = lock_of(f);
  if (__atomic_load_n(&l->owner, __ATOMIC_SEQ_CST) == current()) {
    ++l->depth;
    return;
  }
  lock_word(&l->word);
  __atomic_store_n(&l->owner, current(), __ATOMIC_SEQ_CST);
  l->depth = 1;
}

int ftrylockfile(FILE* f) {
  struct file_lock* l = lock_of(f);
  if (__atomic_load_n(&l->owner, __ATOMIC_SEQ_CST) == current()) {
    ++l->depth;
    return 0;
  }
  if (compare_exchange(&l->word, 0, 1) != 0) return -1;
  __atomic_store_n(&l->owner, current(), __ATOMIC_SEQ_CST);
  l->depth = 1;
  return 0;
}

void funlockfile(FILE* f) {
  struct file_lock* l = lock_of(f);
  if (--l->depth > 0) return;
  __atomic_store_n(&l->owner, (struct __pthread*)0, __ATOMIC_SEQ_CST);
  unlock_word(&l->word);
}

#define FILE_LOCKED(f, type, call)                                                                 \
  do {                                                                                             \
    FILE* locked_ = (f);                                                                           \
    flockfile(locked_);                                                                            \
    type r = call;                                                                                 \
    funlockfile(locked_);                                                                          \
    return r;                                                                                      \
  } while (0)

/* The variadic ones call the v- function with their FILE's lock held. */
#define VARIADIC_LOCKED(f, last, v_function)                                                       \
  do {                                                                                             \
    FILE* locked_ = (f);                                                                           \
    va_list args;                                                                                  \
    va_start(args, last);                                                                          \
    flockfile(locked_);                                                                            \
    int r = v_function(locked_, last, args);                                                       \
    funlockfile(locked_);                                                                          \
    va_end(args);                                                                                  \
    return r;                                                                                      \
  } while (0)

int __real_vfprintf(FILE*, const char*, va_list);
int __real_vfscanf(FILE*, const char*, va_list);
int __real_fputs(const char*, FILE*);
int __real_puts(const char*);
int __real_fputc(int, FILE*);
int __real_putc(int, FILE*);
int __real_putchar(int);
size_t __real_fwrite(const void*, size_t, size_t, FILE*);
int __real_fflush(FILE*);
char* __real_fgets(char*, int, FILE*);
int __real_fgetc(FILE*);
int __real_getc(FILE*);
int __real_getchar(void);
size_t __real_fread(void*, size_t, size_t, FILE*);
int __real_ungetc(int, FILE*);
ssize_t __real_getdelim(char**, size_t*, int, FILE*);
ssize_t __real_getline(char**, size_t*, FILE*);
int __real_fseek(FILE*, long, int);
long __real_ftell(FILE*);
void __real_rewind(FILE*);
int __real_fclose(FILE*);
int __real_setvbuf(FILE*, char*, int, size_t);
void __real_perror(const char*);

int __wrap_vfprintf(FILE* f, const char* format, va_list args) {
  FILE_LOCKED(f, int, __real_vfprintf(f, format, args));
}
int __wrap_vprintf(const char* format, va_list args) {
  FILE_LOCKED(stdout, int, __real_vfprintf(stdout, format, args));
}
int __wrap_fprintf(FILE* f, const char* format, ...) {
  VARIADIC_LOCKED(f, format, __real_vfprintf);
}
int __wrap_printf(const char* format, ...) {
  VARIADIC_LOCKED(stdout, format, __real_vfprintf);
}
int __wrap_vfscanf(FILE* f, const char* format, va_list args) {
  FILE_LOCKED(f, int, __real_vfscanf(f, format, args));
}
int __wrap_vscanf(const char* format, va_list args) {
  FILE_LOCKED(stdin, int, __real_vfscanf(stdin, format, args));
}
int __wrap_fscanf(FILE* f, const char* format, ...) {
  VARIADIC_LOCKED(f, format, __real_vfscanf);
}
int __wrap_scanf(const char* format, ...) {
  VARIADIC_LOCKED(stdin, format, __real_vfscanf);
}
int __wrap_fputs(const char* s, FILE* f) {
  FILE_LOCKED(f, int, __real_fputs(s, f));
}
int __wrap_puts(const char* s) {
  FILE_LOCKED(stdout, int, __real_puts(s));
}
int __wrap_fputc(int c, FILE* f) {
  FILE_LOCKED(f, int, __real_fputc(c, f));
}
int __wrap_putc(int c, FILE* f) {
  FILE_LOCKED(f, int, __real_putc(c, f));
}
int __wrap_putchar(int c) {
  FILE_LOCKED(stdout, int, __real_putchar(c));
}
size_t __wrap_fwrite(const void* p, size_t size, size_t n, FILE* f) {
  FILE_LOCKED(f, size_t, __real_fwrite(p, size, n, f));
}
int __wrap_fflush(FILE* f) {
  if (!f) return __real_fflush(f); /* every FILE, each flushed on its own */
  FILE_LOCKED(f, int, __real_fflush(f));
}
char* __wrap_fgets(char* s, int n, FILE* f) {
  FILE_LOCKED(f, char*, __real_fgets(s, n, f));
}
int __wrap_fgetc(FILE* f) {
  FILE_LOCKED(f, int, __real_fgetc(f));
}
int __wrap_getc(FILE* f) {
  FILE_LOCKED(f, int, __real_getc(f));
}
int __wrap_getchar(void) {
  FILE_LOCKED(stdin, int, __real_getchar());
}
size_t __wrap_fread(void* p, size_t size, size_t n, FILE* f) {
  FILE_LOCKED(f, size_t, __real_fread(p, size, n, f));
}
int __wrap_ungetc(int c, FILE* f) {
  FILE_LOCKED(f, int, __real_ungetc(c, f));
}
ssize_t __wrap_getdelim(char** line, size_t* n, int delim, FILE* f) {
  FILE_LOCKED(f, ssize_t, __real_getdelim(line, n, delim, f));
}
ssize_t __wrap_getline(char** line, size_t* n, FILE* f) {
  FILE_LOCKED(f, ssize_t, __real_getline(line, n, f));
}
int __wrap_fseek(FILE* f, long offset, int whence) {
  FILE_LOCKED(f, int, __real_fseek(f, offset, whence));
}
long __wrap_ftell(FILE* f) {
  FILE_LOCKED(f, long, __real_ftell(f));
}
void __wrap_rewind(FILE* f) {
  flockfile(f);
  __real_rewind(f);
  funlockfile(f);
}
int __wrap_fclose(FILE* f) {
  FILE_LOCKED(f, int, __real_fclose(f)); /* the lock is the slot's, not the FILE's */
}
int __wrap_setvbuf(FILE* f, char* buf, int mode, size_t size) {
  FILE_LOCKED(f, int, __real_setvbuf(f, buf, mode, size));
}
void __wrap_perror(const char* s) {
  flockfile(stderr);
  __real_perror(s);
  funlockfile(stderr);
}
