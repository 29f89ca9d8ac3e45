#!/usr/bin/env bash
# Installs every Debian package tern needs to build, test and benchmark.
# Idempotent and non-interactive; re-running it is cheap when all is present.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)

native_packages=(
  build-essential cmake ninja-build ccache pkg-config git python3 clang-format
  clang-19 lld-19 llvm-19-dev liblld-19-dev libclang-rt-19-dev
  libzstd-dev libxxhash-dev nettle-dev libssl-dev openssl
  libcli11-dev libfmt-dev libspdlog-dev nlohmann-json3-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  wabt clang lld wasi-libc libclang-rt-14-dev-wasm32 libc++-14-dev-wasm32 libc++abi-14-dev-wasm32
  qemu-user g++-s390x-linux-gnu g++-aarch64-linux-gnu
  iproute2 procps hyperfine nodejs strace
  libbpf-dev
)
# The static libraries the cross-built tern links (cmake/toolchains): only
# their .a files are used, the headers are the host's. They are unpacked into
# a private sysroot, .deps/cross/ARCH, instead of being installed as
# multiarch packages: Debian requires a multiarch -dev package to have the
# same version on every architecture, and mirrors do not always carry the
# same point release for all of them (seen: libzstd-dev +deb12u1 on amd64
# and arm64, only the original on s390x), which makes apt refuse the lot.
cross_arches=(s390x arm64)
cross_packages=(libzstd-dev nettle-dev libssl-dev)
cross_root=$repo/.deps/cross

sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi
export DEBIAN_FRONTEND=noninteractive
apt_updated=
apt_update() {
  [ -n "$apt_updated" ] && return 0
  "${sudo_cmd[@]}" apt-get update -q || true
  apt_updated=yes
}

missing=()
for pkg in "${native_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
    || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  apt_update
  "${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# One sysroot per architecture; a stamp file names the packages it holds, so
# a changed list is unpacked again.
for arch in "${cross_arches[@]}"; do
  sysroot=$cross_root/$arch
  stamp="$sysroot/.packages"
  [ "$(cat "$stamp" 2>/dev/null)" = "${cross_packages[*]}" ] && continue
  echo "install-deps: unpacking ${cross_packages[*]} for $arch into $sysroot"
  dpkg --print-foreign-architectures | grep -qx "$arch" || {
    "${sudo_cmd[@]}" dpkg --add-architecture "$arch"
    apt_updated=
  }
  apt_update
  downloads=$(mktemp -d)
  names=()
  for pkg in "${cross_packages[@]}"; do names+=("$pkg:$arch"); done
  (cd "$downloads" && apt-get download -q "${names[@]}")
  rm -rf "$sysroot"
  mkdir -p "$sysroot"
  for deb in "$downloads"/*.deb; do dpkg-deb -x "$deb" "$sysroot"; done
  rm -rf "$downloads"
  echo "${cross_packages[*]}" >"$stamp"
done
