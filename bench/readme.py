"""The README's performance table, read when a benchmark runs, so that each figure is printed
beside the one the README currently states for it (issue 15: figure, target, raw, README)."""

from __future__ import annotations

from functools import cache
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


@cache
def figures() -> dict[str, str]:
    """Row label -> figure cell of the table under "## Performance"."""
    out: dict[str, str] = {}
    inside = False
    for line in README.read_text().splitlines():
        if line.startswith("## "):
            inside = line.strip() == "## Performance"
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if inside and line.startswith("|") and len(cells) >= 2 and cells[0] and not set(cells[1]) <= set("-"):
            out[cells[0]] = cells[1]
    return out


def readme(label: str) -> str:
    """`README: <figure>` for the row whose label starts with `label` (KeyError if none: a
    benchmark naming a row the README lost is a mistake to see at once)."""
    for row, figure in figures().items():
        if row.startswith(label):
            return f"README: {figure}"
    raise KeyError(f"README.md's performance table has no row starting {label!r}")
