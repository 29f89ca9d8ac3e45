# wasi_thread_start(tid, start_arg): where a thread started by
# wasi.thread-spawn begins (the wasi-threads ABI), in a new instance whose
# __stack_pointer is still the main thread's initial one. start_arg is the
# thread's struct __pthread (guest/src/pthread.c): its stack top at offset
# 0 becomes this instance's __stack_pointer before any C code runs; after
# __tern_pthread_run returns, `done` (offset 4) is set and notified here,
# off the C stack, so that pthread_join may free that stack at once.
	.text
	.globaltype	__stack_pointer, i32
	.functype	__tern_pthread_run (i32, i32) -> ()

	.export_name	wasi_thread_start, wasi_thread_start
	.globl	wasi_thread_start
	.type	wasi_thread_start,@function
wasi_thread_start:
	.functype	wasi_thread_start (i32, i32) -> ()
	local.get	1
	i32.load	0
	global.set	__stack_pointer
	local.get	0
	local.get	1
	call	__tern_pthread_run
	local.get	1
	i32.const	1
	i32.atomic.store	4
	local.get	1
	i32.const	4
	i32.add
	i32.const	-1
	memory.atomic.notify	0
	drop
	end_function
