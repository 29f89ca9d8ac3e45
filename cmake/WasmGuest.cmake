# Guest programs: wasm32-wasi C and C++ built with Debian's clang, wasi-libc
# and libc++ for wasm32 as part of the build.
#
#   tern_add_wasm_guest(NAME SOURCES FILE... [SOCKETS] [THREADS] [FLAGS FLAG...]
#                       [DEPENDS FILE...])
#
# builds ${CMAKE_CURRENT_BINARY_DIR}/NAME.wasm from SOURCES (relative to the
# current source directory, or absolute) with `-O2 -Wall -Werror`; C++ when
# a source ends in .cpp (with -fno-exceptions: wasi-libc has no unwinder).
# SOCKETS links the guest library in guest/ (the BSD socket API over tern's
# socket extension). THREADS builds a wasi-threads program: POSIX threads
# from guest/ (guest/include/pthread.h says why each flag is there; errno
# is reached through guest/include/tern_errno.h), atomics,
# and the memory imported as a shared env.memory of 64 MiB at most (a shared
# memory needs a maximum). FLAGS are added to the compiler's; DEPENDS are headers
# and other inputs that rebuild the guest when they change. Each guest is
# its own target, wasm-<dir>-NAME, in `all`. A guest whose one source ends
# in .wat is assembled by wabt's wat2wasm instead, with the threads proposal
# enabled (shared memories and atomics, which wasi-libc's objects cannot
# link with); FLAGS are then wat2wasm's.
#
# TERN_WASM_GUESTS is false when the toolchain is missing; callers then skip
# their guests and the tests that run them.
include_guard(GLOBAL)

find_program(TERN_WASI_CLANG clang)
find_program(TERN_WASI_CLANGXX clang++)
if(TERN_WASI_CLANG AND TERN_WASI_CLANGXX AND EXISTS /usr/include/wasm32-wasi/stdio.h)
  set(TERN_WASM_GUESTS TRUE)
else()
  set(TERN_WASM_GUESTS FALSE)
  message(STATUS "wasm32-wasi guests: clang, clang++ or wasi-libc missing; guests and their tests skipped")
endif()

set(TERN_GUEST_SOCKET_LIB ${PROJECT_SOURCE_DIR}/guest/src/wasi_socket_ext.c)
set(TERN_GUEST_SOCKET_INCLUDE ${PROJECT_SOURCE_DIR}/guest/include)
set(TERN_GUEST_PTHREAD_SOURCES ${PROJECT_SOURCE_DIR}/guest/src/pthread.c
                               ${PROJECT_SOURCE_DIR}/guest/src/wasi_thread_start.s
                               ${PROJECT_SOURCE_DIR}/guest/src/errno.s)
set(TERN_GUEST_PTHREAD_HEADER ${PROJECT_SOURCE_DIR}/guest/include/pthread.h
                              ${PROJECT_SOURCE_DIR}/guest/include/tern_errno.h)
# The functions the guest library wraps (--wrap=NAME: malloc and friends
# under one lock, stdio under a lock per FILE), one list for every build of
# a threaded guest (bench/threads too).
set(TERN_GUEST_THREADS_WRAPS ${PROJECT_SOURCE_DIR}/guest/threads-wraps.rsp)
set(TERN_GUEST_THREADS_FLAGS
  -nostartfiles -matomics -mbulk-memory -ftls-model=local-exec
  -I${PROJECT_SOURCE_DIR}/guest/include -include ${PROJECT_SOURCE_DIR}/guest/include/tern_errno.h
  -Wl,--import-memory,--shared-memory,--max-memory=67108864,--no-check-features
  -Wl,@${TERN_GUEST_THREADS_WRAPS})

function(tern_add_wasm_guest name)
  cmake_parse_arguments(PARSE_ARGV 1 arg "SOCKETS;THREADS" "" "SOURCES;FLAGS;DEPENDS")
  if(NOT TERN_WASM_GUESTS)
    return()
  endif()
  if(NOT arg_SOURCES)
    message(FATAL_ERROR "tern_add_wasm_guest(${name}): no SOURCES")
  endif()
  set(output ${CMAKE_CURRENT_BINARY_DIR}/${name}.wasm)
  if(arg_SOURCES MATCHES "\\.wat$")
    find_program(TERN_WAT2WASM wat2wasm REQUIRED)
    cmake_path(ABSOLUTE_PATH arg_SOURCES BASE_DIRECTORY ${CMAKE_CURRENT_SOURCE_DIR}
               OUTPUT_VARIABLE source)
    set(command ${TERN_WAT2WASM} --enable-threads ${arg_FLAGS} ${source})
    set(depends ${source} ${arg_DEPENDS})
  else()
    set(compiler ${TERN_WASI_CLANG})
    set(flags --target=wasm32-wasi -O2 -Wall -Werror ${arg_FLAGS})
    set(sources)
    foreach(source IN LISTS arg_SOURCES)
      cmake_path(ABSOLUTE_PATH source BASE_DIRECTORY ${CMAKE_CURRENT_SOURCE_DIR})
      list(APPEND sources ${source})
      if(source MATCHES "\\.cpp$")
        set(compiler ${TERN_WASI_CLANGXX})
      endif()
    endforeach()
    if(compiler STREQUAL TERN_WASI_CLANGXX)
      list(APPEND flags -fno-exceptions)
    endif()
    set(depends ${sources} ${arg_DEPENDS})
    if(arg_SOCKETS)
      list(APPEND flags -I${TERN_GUEST_SOCKET_INCLUDE})
      list(APPEND sources ${TERN_GUEST_SOCKET_LIB})
      list(APPEND depends ${TERN_GUEST_SOCKET_LIB} ${TERN_GUEST_SOCKET_INCLUDE}/wasi_socket_ext.h)
    endif()
    if(arg_THREADS)
      list(APPEND flags ${TERN_GUEST_THREADS_FLAGS})
      list(APPEND sources ${TERN_GUEST_PTHREAD_SOURCES})
      list(APPEND depends ${TERN_GUEST_PTHREAD_SOURCES} ${TERN_GUEST_PTHREAD_HEADER}
                          ${TERN_GUEST_THREADS_WRAPS})
    endif()
    set(command ${compiler} ${flags} ${sources})
  endif()

  add_custom_command(
    OUTPUT ${output}
    COMMAND ${command} -o ${output}
    DEPENDS ${depends}
    COMMENT "Building wasm32-wasi guest ${name}.wasm"
    VERBATIM)
  file(RELATIVE_PATH dir ${PROJECT_BINARY_DIR} ${CMAKE_CURRENT_BINARY_DIR})
  string(MAKE_C_IDENTIFIER "${dir}" dir)
  add_custom_target(wasm-${dir}-${name} ALL DEPENDS ${output})
endfunction()
