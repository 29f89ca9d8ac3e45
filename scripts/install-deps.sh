#!/usr/bin/env bash
# Installs every Debian package tern needs to build, test and benchmark.
# Idempotent and non-interactive; re-running it is cheap when all is present.
set -euo pipefail

native_packages=(
  build-essential cmake ninja-build ccache pkg-config git python3
  clang-19 lld-19 llvm-19-dev liblld-19-dev libclang-rt-19-dev
  libzstd-dev libxxhash-dev nettle-dev
  libcli11-dev libfmt-dev libspdlog-dev nlohmann-json3-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  wabt clang lld wasi-libc libclang-rt-14-dev-wasm32 libc++-14-dev-wasm32 libc++abi-14-dev-wasm32
  qemu-user g++-s390x-linux-gnu g++-aarch64-linux-gnu
  iproute2 procps hyperfine nodejs
)
# Libraries the cross-built tern links against (Debian multiarch).
cross_arches=(s390x arm64)
cross_packages=()
for arch in "${cross_arches[@]}"; do
  cross_packages+=("libzstd-dev:$arch" "libxxhash-dev:$arch" "nettle-dev:$arch")
done

sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi

missing=()
for pkg in "${native_packages[@]}" "${cross_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
    || missing+=("$pkg")
done
if [ "${#missing[@]}" -eq 0 ]; then
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
for arch in "${cross_arches[@]}"; do
  dpkg --print-foreign-architectures | grep -qx "$arch" \
    || "${sudo_cmd[@]}" dpkg --add-architecture "$arch"
done
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -q || true
"${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
