# Cross build of tern for s390x Linux, run under qemu-user (qemu-s390x BIN).
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR s390x)
set(CMAKE_C_COMPILER s390x-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER s390x-linux-gnu-g++)
set(CMAKE_LIBRARY_ARCHITECTURE s390x-linux-gnu)
# .deps/cross/s390x: the static libraries scripts/install-deps.sh unpacks.
set(CMAKE_FIND_ROOT_PATH /usr/s390x-linux-gnu ${CMAKE_CURRENT_LIST_DIR}/../../.deps/cross/s390x)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY BOTH)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE BOTH)
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-s390x)
# Linked statically: the cross toolchain's glibc and Debian's multiarch glibc
# (pulled in by the -dev:ARCH libraries) differ in version, and a dynamic
# binary would load a mix of the two under qemu.
set(CMAKE_EXE_LINKER_FLAGS_INIT "-static")
