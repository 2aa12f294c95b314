"""Reads preprocessed kp.h on stdin; prints its declarations, one per line,
sorted (see declarations.sh)."""
import re, sys
text = sys.stdin.read()
# Keep only what kp.h itself declares: from its first typedef on.
start = min(i for i in (text.find("typedef struct kp_"), text.find("typedef int32_t kp_")) if i >= 0)
text = re.sub(r"\s+", " ", text[start:])
# extern "C" { ... } blocks (C++) are unwrapped: each declaration inside
# is listed as extern "C", so how the blocks are split does not matter.
out, depth, cur, linkage = [], 0, "", ""
i = 0
while i < len(text):
    if depth == 0 and not cur.strip() and text.startswith('extern "C" {', i):
        linkage, i = 'extern "C" ', i + len('extern "C" {')
        continue
    ch = text[i]
    i += 1
    if depth == 0 and linkage and ch == "}" and not cur.strip():
        linkage, cur = "", ""
        continue
    cur += ch
    if ch in "{(": depth += 1
    elif ch in "})": depth -= 1
    elif ch == ";" and depth == 0:
        out.append(linkage + cur.strip()); cur = ""
out += [cur.strip()] if cur.strip() else []
for d in sorted(set(out)):
    print("decl:", d)
