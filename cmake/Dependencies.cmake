# Third-party libraries, all from Debian packages, one interface target per
# use so that each layer (cmake/Layers.cmake) links only what it uses:
#   tern::base   fmt, nettle (sha256), xxhash, threads: every layer
#   tern::zstd   snapshot pages and artifacts' compression
#   tern::json   the JSON of `tern inspect --json` and `tern stats`
#   tern::tls    OpenSSL (TLS 1.3 for migration streams, src/migrate/);
#                native builds load it on first use instead of linking it
#   tern::cli11  the command line (src/cli/ only)
# Cross builds (s390x, aarch64) find the multiarch libraries (zstd, nettle,
# OpenSSL) and use the architecture-independent headers (fmt header-only,
# CLI11, nlohmann-json, xxhash inline) so that no foreign C++ library has to
# be installed; OpenSSL's one architecture-specific header directory comes
# from the unpacked sysroot (scripts/install-deps.sh).
foreach(dep base zstd json tls cli11)
  add_library(tern_dep_${dep} INTERFACE)
  add_library(tern::${dep} ALIAS tern_dep_${dep})
endforeach()

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
  target_compile_definitions(tern_dep_base INTERFACE FMT_HEADER_ONLY)
  target_include_directories(tern_dep_base SYSTEM INTERFACE ${cross_include})
  target_include_directories(tern_dep_tls SYSTEM INTERFACE ${OPENSSL_ARCH_INCLUDE})
else()
  find_package(fmt REQUIRED)
  find_package(CLI11 REQUIRED)
  find_package(nlohmann_json REQUIRED)
  target_link_libraries(tern_dep_base INTERFACE fmt::fmt)
  target_link_libraries(tern_dep_cli11 INTERFACE CLI11::CLI11)
  target_link_libraries(tern_dep_json INTERFACE nlohmann_json::nlohmann_json)
endif()

if(CMAKE_CROSSCOMPILING) # cross builds link statically (cmake/toolchains)
  find_library(ZSTD_LIBRARY NAMES libzstd.a REQUIRED)
  find_library(NETTLE_LIBRARY NAMES libnettle.a REQUIRED)
  find_library(SSL_LIBRARY NAMES libssl.a REQUIRED)
  find_library(CRYPTO_LIBRARY NAMES libcrypto.a REQUIRED)
else()
  find_library(ZSTD_LIBRARY zstd REQUIRED)
  find_library(NETTLE_LIBRARY nettle REQUIRED)
  find_library(SSL_LIBRARY ssl REQUIRED)
  find_library(CRYPTO_LIBRARY crypto REQUIRED)
endif()
target_link_libraries(tern_dep_base INTERFACE ${NETTLE_LIBRARY} pthread)
target_compile_definitions(tern_dep_base INTERFACE XXH_INLINE_ALL)
target_link_libraries(tern_dep_zstd INTERFACE ${ZSTD_LIBRARY})
if(CMAKE_CROSSCOMPILING)
  target_link_libraries(tern_dep_tls INTERFACE ${SSL_LIBRARY} ${CRYPTO_LIBRARY} ${CMAKE_DL_LIBS})
else()
  # Not linked: loaded when TLS is first used (src/migrate/openssl_on_demand.cpp),
  # so that the ~4 ms of relocating libcrypto is not paid by every tern process.
  target_compile_definitions(tern_dep_tls INTERFACE TERN_OPENSSL_ON_DEMAND=1)
  target_link_libraries(tern_dep_tls INTERFACE ${CMAKE_DL_LIBS})
endif()
