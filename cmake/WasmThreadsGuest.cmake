# Threaded wasm32-wasi guests: C programs using POSIX threads from the guest
# library in guest/ (guest/include/pthread.h says why each flag is there).
#
#   tern_add_wasm_threads_guest(NAME SOURCES FILE... [FLAGS FLAG...])
#
# builds ${CMAKE_CURRENT_BINARY_DIR}/NAME.wasm with -O2 -Wall -Werror.
include_guard(GLOBAL)

find_program(TERN_WASI_CLANG clang)
set(TERN_GUEST_PTHREAD_SOURCES ${PROJECT_SOURCE_DIR}/guest/src/pthread.c
                               ${PROJECT_SOURCE_DIR}/guest/src/wasi_thread_start.s)
set(TERN_GUEST_PTHREAD_HEADER ${PROJECT_SOURCE_DIR}/guest/include/pthread.h)
# 64 MiB of shared memory at most (a shared memory needs a maximum).
set(TERN_GUEST_THREADS_FLAGS
  -nostartfiles -matomics -mbulk-memory -ftls-model=local-exec
  -I${PROJECT_SOURCE_DIR}/guest/include
  -Wl,--import-memory,--shared-memory,--max-memory=67108864,--no-check-features
  -Wl,--wrap=malloc,--wrap=free,--wrap=calloc,--wrap=realloc,--wrap=aligned_alloc,--wrap=posix_memalign)

function(tern_add_wasm_threads_guest name)
  cmake_parse_arguments(PARSE_ARGV 1 arg "" "" "SOURCES;FLAGS")
  set(sources)
  foreach(source IN LISTS arg_SOURCES)
    cmake_path(ABSOLUTE_PATH source BASE_DIRECTORY ${CMAKE_CURRENT_SOURCE_DIR})
    list(APPEND sources ${source})
  endforeach()
  set(output ${CMAKE_CURRENT_BINARY_DIR}/${name}.wasm)
  add_custom_command(
    OUTPUT ${output}
    COMMAND ${TERN_WASI_CLANG} --target=wasm32-wasi -O2 -Wall -Werror ${TERN_GUEST_THREADS_FLAGS}
            ${arg_FLAGS} ${sources} ${TERN_GUEST_PTHREAD_SOURCES} -o ${output}
    DEPENDS ${sources} ${TERN_GUEST_PTHREAD_SOURCES} ${TERN_GUEST_PTHREAD_HEADER}
    COMMENT "Building threaded wasm32-wasi guest ${name}.wasm"
    VERBATIM)
  add_custom_target(wasm-threads-${name} ALL DEPENDS ${output})
endfunction()
