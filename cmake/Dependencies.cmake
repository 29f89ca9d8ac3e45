# Third-party libraries, all from Debian packages. Cross builds (s390x,
# aarch64) find the multiarch libraries (zstd, nettle, OpenSSL) and use the
# architecture-independent headers (fmt header-only, CLI11, nlohmann-json,
# xxhash inline) so that no foreign C++ library has to be installed;
# OpenSSL's one architecture-specific header directory comes from the
# unpacked sysroot (scripts/install-deps.sh).
add_library(tern_deps INTERFACE)
add_library(tern::deps ALIAS tern_deps)

if(CMAKE_CROSSCOMPILING)
  # Only the architecture-independent headers: putting all of /usr/include
  # on the path would mix the host's glibc headers into the target build.
  set(cross_include ${CMAKE_BINARY_DIR}/cross-include)
  file(MAKE_DIRECTORY ${cross_include})
  foreach(header CLI nlohmann fmt xxhash.h zstd.h zstd_errors.h nettle openssl)
    file(CREATE_LINK /usr/include/${header} ${cross_include}/${header} SYMBOLIC)
  endforeach()
  # openssl/configuration.h differs per architecture (Debian keeps it in
  # the multiarch directory).
  find_path(OPENSSL_ARCH_INCLUDE openssl/configuration.h
    PATHS ${CMAKE_FIND_ROOT_PATH} PATH_SUFFIXES usr/include/${CMAKE_LIBRARY_ARCHITECTURE}
    NO_DEFAULT_PATH REQUIRED)
  target_compile_definitions(tern_deps INTERFACE FMT_HEADER_ONLY)
  target_include_directories(tern_deps SYSTEM INTERFACE ${cross_include} ${OPENSSL_ARCH_INCLUDE})
else()
  find_package(fmt REQUIRED)
  find_package(CLI11 REQUIRED)
  find_package(nlohmann_json REQUIRED)
  target_link_libraries(tern_deps INTERFACE fmt::fmt CLI11::CLI11 nlohmann_json::nlohmann_json)
endif()

if(CMAKE_CROSSCOMPILING) # cross builds link statically (cmake/toolchains)
  find_library(ZSTD_LIBRARY NAMES libzstd.a REQUIRED)
  find_library(NETTLE_LIBRARY NAMES libnettle.a REQUIRED)
  find_library(SSL_LIBRARY NAMES libssl.a REQUIRED)
  find_library(CRYPTO_LIBRARY NAMES libcrypto.a REQUIRED)
else()
  find_library(ZSTD_LIBRARY zstd REQUIRED)
  find_library(NETTLE_LIBRARY nettle REQUIRED)
  # TLS 1.3 for migration streams (src/migrate/channel.h).
  find_library(SSL_LIBRARY ssl REQUIRED)
  find_library(CRYPTO_LIBRARY crypto REQUIRED)
endif()
target_link_libraries(tern_deps INTERFACE ${ZSTD_LIBRARY} ${NETTLE_LIBRARY} ${SSL_LIBRARY}
  ${CRYPTO_LIBRARY} ${CMAKE_DL_LIBS} pthread)
target_compile_definitions(tern_deps INTERFACE XXH_INLINE_ALL)
