#!/usr/bin/env bash
# Formats every C and C++ source of the repository (tern, its tests, the
# guests and the bench kernels) with its .clang-format (`make format`), or
# only checks that they are formatted (`--check`: the `format` stage of
# `make test`, which changes nothing and fails naming the files that differ).
#
# The style is clang-format 14's, Debian 12's: other versions lay some
# constructs out differently, so the check refuses to judge with them.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
check=
case "${1:-}" in
--check) check=yes ;;
"") ;;
*)
  echo "usage: $0 [--check]" >&2
  exit 2
  ;;
esac

version=$(clang-format --version 2>/dev/null | sed -n 's/.*clang-format version \([0-9]*\).*/\1/p')
if [ "$version" != 14 ]; then
  echo "format.sh: needs clang-format 14 (Debian 12's), found '${version:-none}'" >&2
  exit 1
fi

# Tracked and new (not ignored) sources; outside a git checkout, the folders.
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  mapfile -t files < <(git ls-files --cached --others --exclude-standard -- '*.cpp' '*.h' '*.c' |
    while read -r f; do [ -f "$f" ] && echo "$f"; done)
else
  mapfile -t files < <(find src include tests fuzz bench examples guest -name '*.cpp' -o -name '*.h' -o -name '*.c')
fi

if [ -z "$check" ]; then
  clang-format -i "${files[@]}"
  exit 0
fi
if ! errors=$(clang-format --dry-run --Werror "${files[@]}" 2>&1); then
  echo "format.sh: these files are not formatted (run 'make format'):" >&2
  grep -o '^[^:]*\.\(cpp\|h\|c\):' <<<"$errors" | sort -u | sed 's/:$//; s/^/  /' >&2
  exit 1
fi
echo "format.sh: ${#files[@]} files formatted"
