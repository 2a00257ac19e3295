"""Prints line N (1 = main job, 2 = tests) of the README's Quick start code block."""

import re
import sys

text = open("README.md", encoding="utf-8").read()
section = text.split("## Quick start", 1)[1]
block = re.search(r"```[a-z]*\n(.*?)```", section, re.S).group(1)
lines = [line for line in block.splitlines() if line.strip()]
print(lines[int(sys.argv[1]) - 1])
