#!/usr/bin/env bash
# Checks every C++ file git tracks against the repository's .clang-format, as CI does before
# building. Prints each file that differs; `tests/format.sh --fix` rewrites them instead.
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t files < <(git ls-files '*.cc' '*.h')
if [ "${1:-}" = "--fix" ]; then
  clang-format -i "${files[@]}"
  exit 0
fi
unformatted=()
for file in "${files[@]}"; do
  clang-format --dry-run --Werror "$file" >/dev/null 2>&1 || unformatted+=("$file")
done
if [ ${#unformatted[@]} -gt 0 ]; then
  printf 'not formatted: %s\n' "${unformatted[@]}" >&2
  echo "fix with: tests/format.sh --fix (clang-format -i on those files)" >&2
  exit 1
fi
echo "format: ${#files[@]} files match .clang-format"
