#!/usr/bin/env bash
# Fail if any C source is not formatted with the project's .clang-format.
set -euo pipefail
cf=${1:-clang-format}
cd "$(dirname "$0")/.."
mapfile -t files < <(git ls-files '*.c' '*.h' 2>/dev/null || find src tests tools -name '*.[ch]')
[ ${#files[@]} -eq 0 ] && { echo "no sources"; exit 0; }
"$cf" --dry-run -Werror "${files[@]}"
echo "clang-format: ${#files[@]} files clean"
