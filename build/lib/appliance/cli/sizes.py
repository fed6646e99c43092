"""Byte counts for people: the one formatter every `stowage` command uses."""

from __future__ import annotations

UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")


def human_size(n: int | None) -> str:
    """1536 -> "1.5 KiB"; None (unknown) -> "-"."""
    if n is None:
        return "-"
    size = float(n)
    for unit in UNITS[:-1]:
        if size < 1024:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} {UNITS[-1]}"
