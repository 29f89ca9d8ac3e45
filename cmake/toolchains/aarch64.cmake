# Cross build of tern for aarch64 Linux, run under qemu-user (qemu-aarch64 BIN).
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)
# .deps/cross/arm64: the static libraries scripts/install-deps.sh unpacks.
set(CMAKE_FIND_ROOT_PATH /usr/aarch64-linux-gnu ${CMAKE_CURRENT_LIST_DIR}/../../.deps/cross/arm64)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY BOTH)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE BOTH)
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64)
# Linked statically: the cross toolchain's glibc and Debian's multiarch glibc
# (pulled in by the -dev:ARCH libraries) differ in version, and a dynamic
# binary would load a mix of the two under qemu.
set(CMAKE_EXE_LINKER_FLAGS_INIT "-static")
