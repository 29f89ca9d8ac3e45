# __tern_errno_location(): the address of wasi-libc's errno, for threaded
# guests (guest/include/tern_errno.h). wasi-libc declares errno
# _Thread_local but, built without atomics, defines it as an ordinary
# global: code compiled for threads (-matomics) refers to it by a TLS
# relocation that wasm-ld refuses against that definition, so any threaded
# guest that names errno (the socket library, perror-style code) did not
# link. Here it is named by its plain address: one errno for all threads,
# as guest/include/pthread.h says.
	.text
	.globl	__tern_errno_location
	.type	__tern_errno_location,@function
__tern_errno_location:
	.functype	__tern_errno_location () -> (i32)
	i32.const	errno
	end_function
