#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
# Writes the "Handler options" part of nbd-runner(8) from what the built
# handlers declare: runs `nbd-runner --handler-dir DIR --help` and turns
# its handler section (each handler's description and config help) into
# scdoc, replacing the line %%HANDLER_OPTIONS%% of IN. So the man page says
# what --help says, and a handler's options are documented by the handler.
#
# Usage: handler-options.sh RUNNER HANDLER_DIR IN OUT
set -eu
runner=$1 dir=$2 in=$3 out=$4

help=$("$runner" --handler-dir "$dir" --help) || {
  echo "handler-options.sh: $runner --help failed" >&2
  exit 1
}
section=$(printf '%s\n' "$help" | awk '
  /^Handler options/ { on = 1; getline; next }  # the heading and its directory line
  on && /^$/ { exit }
  on { print }')
[ -n "$section" ] || { echo "handler-options.sh: no handler options in --help" >&2; exit 1; }

# "  [type] description"        -> a paragraph naming the handler
# "  --name=ARG  what it does"  -> *--name*=_ARG_ and an indented paragraph
# "          more text"         -> continues that paragraph
# scdoc's markup characters in the text are escaped.
options=$(printf '%s\n' "$section" | awk '
  function esc(s) { gsub(/\\/, "\\\\", s); gsub(/\*/, "\\*", s); gsub(/_/, "\\_", s); return s }
  /^  \[/ {
    match($0, /\[[^]]*\]/)
    type = substr($0, RSTART + 1, RLENGTH - 2)
    rest = substr($0, RSTART + RLENGTH); sub(/^ +/, "", rest)
    printf "%sThe *%s* handler: %s.\n", (n++ ? "\n" : ""), esc(type), esc(rest)
    next
  }
  /^  --/ {
    line = substr($0, 5)
    name = line; text = ""
    if (match(line, / +/)) { name = substr(line, 1, RSTART - 1); text = substr(line, RSTART + RLENGTH) }
    arg = ""
    if (index(name, "=")) { arg = substr(name, index(name, "=") + 1); name = substr(name, 1, index(name, "=") - 1) }
    printf "\n*--%s*%s\n", esc(name), (arg == "" ? "" : "=_" esc(arg) "_")
    if (text != "") printf "\t%s\n", esc(text)
    next
  }
  { t = $0; sub(/^ +/, "", t); printf "\t%s\n", esc(t) }')

awk -v options="$options" '
  $0 == "%%HANDLER_OPTIONS%%" { print options; next }
  { print }' "$in" >"$out.tmp"
grep -q "^\*--" "$out.tmp" || { echo "handler-options.sh: nothing written" >&2; exit 1; }
mv "$out.tmp" "$out"
