#!/usr/bin/env python3
"""Checks the layout `terraform fmt` produces, for machines without Terraform (CI installs only
from package registries, and Terraform is in none of them): two-space indentation by block
depth, `=` aligned across consecutive attributes, no tabs or trailing spaces, one final newline.
With Terraform installed, scripts/check-infra.sh runs `terraform fmt -check` instead.
Usage: hcl_format.py FILE.tf...
"""
import re
import sys

ATTR = re.compile(r"^(\s*)([A-Za-z_][A-Za-z0-9_-]*|\"[^\"]+\")(\s*)=(?!=)")


def check(path):
    text = open(path).read()
    problems = []
    if not text.endswith("\n") or text.endswith("\n\n"):
        problems.append("must end with exactly one newline")
    depth, group = 0, []

    def flush():
        if len(group) > 1:
            widths = {len(m.group(1)) + len(m.group(2)) + len(m.group(3)) for _, m in group}
            if len(widths) > 1:
                problems.append(f"line {group[0][0]}: '=' not aligned across lines {group[0][0]}-{group[-1][0]}")
        for n, m in group:
            if m.group(3) == "" or (len(group) == 1 and m.group(3) != " "):
                problems.append(f"line {n}: one space before '='")
        group.clear()

    for n, line in enumerate(text.split("\n")[:-1], 1):
        if "\t" in line:
            problems.append(f"line {n}: tab")
        if line != line.rstrip():
            problems.append(f"line {n}: trailing space")
        stripped = line.strip()
        opens = stripped.count("{") + stripped.count("[") + stripped.count("(")
        closes = stripped.count("}") + stripped.count("]") + stripped.count(")")
        # Brackets opened or closed together on one line (`({`, `})`) are one level.
        leading_close = 1 if stripped[:1] in ("}", "]", ")") else 0
        expected = 2 * (depth - leading_close)
        if stripped and not stripped.startswith("#") and len(line) - len(line.lstrip(" ")) != expected:
            problems.append(f"line {n}: indented {len(line) - len(line.lstrip(' '))}, expected {expected}")
        m = ATTR.match(line)
        # A value that spans lines ends the run of aligned attributes and is not aligned itself.
        if m and opens <= closes and not stripped.startswith("#"):
            group.append((n, m))
        else:
            flush()
        depth += (opens > closes) - (opens < closes)
    flush()
    return problems


def main(paths):
    bad = 0
    for path in paths:
        for p in check(path):
            print(f"{path}: {p}")
            bad += 1
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
