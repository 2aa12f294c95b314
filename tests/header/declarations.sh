#!/usr/bin/env bash
# Prints the declarations of a kp.h in a normalised, order-independent form:
# the macros it defines (gcc -dM) and its C declarations (preprocessed,
# comments dropped, one declaration per line, sorted). Two headers with the
# same output differ only in order and comments.
#   tests/header/declarations.sh include/kp.h [c|c++]
set -euo pipefail
h=$1
lang=${2:-c}
cc=${CC:-gcc}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cp "$h" "$dir/kp.h"
printf '#include "kp.h"\n' > "$dir/t.c"
# Macros kp.h defines (builtins and the system headers' removed).
"$cc" -x "$lang" -dM -E "$dir/t.c" -I"$dir" | sort > "$dir/all"
printf '' | "$cc" -x "$lang" -dM -E -include stdbool.h -include stddef.h -include stdint.h - | sort > "$dir/sys"
comm -23 "$dir/all" "$dir/sys" | sed 's/^/macro: /'
# Declarations: what follows the system headers, whitespace collapsed, split
# at top-level semicolons, sorted.
"$cc" -x "$lang" -E -P "$dir/t.c" -I"$dir" \
  | python3 "$(dirname "$0")/split_declarations.py"
