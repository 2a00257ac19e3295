"""Turns the journey's terminal output into its committed log: colour codes and carriage-return
redraws removed, each progress bar kept at its last state, and this machine's pip warnings about
its local package index dropped.

    bash docs/journeys/own_data.sh 2>&1 | python3 docs/journeys/clean_log.py \
        > docs/journeys/own_data.log
"""

import re
import sys

COLOUR = re.compile(r"\x1b\[[0-9;]*m")
BAR = re.compile(r"^\s*(\d+)/(\d+) ━")


def clean(text):
    out = []
    for line in text.split("\n"):
        parts = [p for p in COLOUR.sub("", line).split("\r") if p.strip()]
        line = parts[-1].rstrip() if parts else ""
        bar = BAR.match(line)
        if line.startswith("WARNING: Location 'file:") or (bar and bar[1] != bar[2]):
            continue
        if line or (out and out[-1]):
            out.append(line)
    return "\n".join(out).rstrip("\n") + "\n"


if __name__ == "__main__":
    sys.stdout.write(clean(sys.stdin.read()))
