#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
# The man pages built from docs/man/*.scd render without warnings, carry
# the program version, and say the same as the programs' --help: the same
# options for nbd-runner and nbd-clid, the same subcommands and keywords for
# nbd-cli; the default config etc/nbd-runner.conf documents every option of
# nbd-runner --help that a config file can set. A new option added to one
# and not the others fails here. The handler options of nbd-runner.8 are
# word for word what the handlers declare.
source "$(dirname "$0")/functions.sh"
requires man python3

MAN="$NBDR_BUILD/share/man/man8"
version=$("$RUNNER" --version | awk '{print $2}')
for page in nbd-runner nbd-cli nbd-clid; do
  [ -s "$MAN/$page.8" ] || fail "$MAN/$page.8 was not built"
  LC_ALL=C MANWIDTH=200 man --warnings -l "$MAN/$page.8" 2>"$T/$page.warn" | col -bx >"$T/$page.txt" \
    || fail "man -l $page.8"
  [ ! -s "$T/$page.warn" ] || { cat "$T/$page.warn"; fail "man page warnings in $page.8"; }
  grep -q "nbd-runner $version" "$T/$page.txt" || fail "$page.8 does not carry version $version"
done
pass "nbd-runner.8, nbd-cli.8, nbd-clid.8 built, render cleanly, version $version"

"$RUNNER" --help >"$T/nbd-runner.help"
"$NBDR_BUILD/sbin/nbd-clid" --help >"$T/nbd-clid.help"
"$CLI" help >"$T/nbd-cli.help"
[ "$("$NBDR_BUILD/sbin/nbd-clid" --version | awk '{print $NF}')" = "$version" ] \
  || fail "nbd-clid --version does not print $version"

python3 - "$T" <<'PY'
import re, sys
t = sys.argv[1]
def read(name): return open(f"{t}/{name}").read()

def sections(text):
    """Rendered man page -> {SECTION: [lines]} (section headers at column 0)."""
    out, cur = {}, None
    for line in text.splitlines()[1:]:
        if re.match(r"^[A-Z][A-Z ]+$", line):
            cur = line.strip(); out[cur] = []
        elif cur:
            out[cur].append(line)
    return out

OPT = re.compile(r"--[a-z][a-z-]*")
WORD = re.compile(r"(?<![A-Za-z/._-])[a-z][a-z-]*(?![A-Za-z_])")
bad = []

def compare(what, in_help, in_man):
    if in_help - in_man: bad.append(f"{what}: in --help, not in the man page: {sorted(in_help - in_man)}")
    if in_man - in_help: bad.append(f"{what}: in the man page, not in --help: {sorted(in_man - in_help)}")

for prog in ("nbd-runner", "nbd-clid"):
    man = sections(read(f"{prog}.txt"))
    man_opts = set(OPT.findall("\n".join(man.get("OPTIONS", []) + man.get("SYNOPSIS", []))))
    compare(f"{prog} options", set(OPT.findall(read(f"{prog}.help"))), man_opts)

# nbd-cli: the usage block of `nbd-cli help` against SYNOPSIS + COMMANDS
# (the term lines, at the section's indentation) + OPTIONS.
help_lines = read("nbd-cli.help").split("\n\n")[1].splitlines()
help_usage = "\n".join(help_lines)
man = sections(read("nbd-cli.txt"))
indent = min(len(l) - len(l.lstrip()) for l in man["COMMANDS"] if l.strip())
terms = [l for l in man["COMMANDS"] if l.strip() and len(l) - len(l.lstrip()) == indent]
man_usage = "\n".join(man["SYNOPSIS"] + terms)
compare("nbd-cli subcommands and keywords",
        set(WORD.findall(help_usage)) - {"nbd-cli"}, set(WORD.findall(man_usage)) - {"nbd-cli"})
compare("nbd-cli options", set(OPT.findall(read("nbd-cli.help"))),
        set(OPT.findall("\n".join(man["SYNOPSIS"] + man.get("OPTIONS", [])))))
if bad:
    print("\n".join(bad)); sys.exit(1)
PY
pass "--help of nbd-runner, nbd-cli and nbd-clid matches their man pages"

# The handler options of nbd-runner.8 are the handlers' own words: each
# option's text in the man page is its text in --help (config_help).
python3 - "$T" <<'PY' || fail "nbd-runner.8's handler options are not the handlers' config help"
import re, sys
t = sys.argv[1]
def options(lines, start):
    """'--name' -> its description, whitespace-normalised, from the lines after start."""
    out, cur = {}, None
    for line in lines[start:]:
        m = re.match(r"^\s*(--[a-z][a-z-]*)(=\S+)?\s*(.*)$", line)
        if m:
            cur = m.group(1); out[cur] = m.group(3)
        elif cur and line.strip() and not re.match(r"^\s*(\[|The \S+ handler:)", line):
            out[cur] += " " + line.strip()
        elif cur and not line.strip() and out[cur]:
            cur = None
    return {k: " ".join(v.split()) for k, v in out.items()}
help_lines = open(f"{t}/nbd-runner.help").read().split("\n\n")
block = next(b for b in help_lines if b.startswith("Handler options")).splitlines()
in_help = options(block, 2)
man = open(f"{t}/nbd-runner.txt").read().splitlines()
start = next(i for i, l in enumerate(man) if l.strip() == "Handler options")
end = next(i for i in range(start + 1, len(man)) if re.match(r"^[A-Z]", man[i]))
in_man = options(man[:end], start + 1)
bad = [f"{k}: --help says {in_help[k]!r}, the man page {in_man.get(k)!r}"
       for k in in_help if in_man.get(k) != in_help[k]]
bad += [f"{k}: in the man page's handler options, not in --help" for k in in_man if k not in in_help]
if not in_help: bad.append("no handler option in --help")
if bad:
    print("\n".join(bad)); sys.exit(1)
print(f"{len(in_help)} handler options")
PY
pass "nbd-runner.8's handler options are the text the handlers declare"

# Config keys: "# name = default" lines; everything but the options that
# only make sense on a command line.
sed -n 's/^# *\([a-z][a-z-]*\) =.*/\1/p' "$NBDR_SRC/etc/nbd-runner.conf" | sort -u >"$T/conf.keys"
sed -n 's/^  --\([a-z][a-z-]*\).*/\1/p' "$T/nbd-runner.help" | grep -vxE 'config|foreground|help|version|check-config' |
  sort -u >"$T/help.keys"
diff "$T/help.keys" "$T/conf.keys" >"$T/conf.diff" ||
  { cat "$T/conf.diff"; fail "etc/nbd-runner.conf and nbd-runner --help differ (< help only, > config only)"; }
pass "etc/nbd-runner.conf documents all $(wc -l <"$T/help.keys") options a config file can set"
