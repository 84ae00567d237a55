#!/usr/bin/env bash
# Regenerates the configuration key reference in README.md from the key tables in the code.
set -euo pipefail
cd "$(dirname "$0")/.."
binary=${1:-build/searchsync}
"$binary" check --reference | python3 -c '
import sys
reference = sys.stdin.read()
readme = open("README.md").read()
begin, end = "<!-- reference:begin -->\n", "<!-- reference:end -->"
start, stop = readme.index(begin) + len(begin), readme.index(end)
open("README.md", "w").write(readme[:start] + reference + readme[stop:])
'
