"""Every listing command of `stowage` has --json; plain progress lines off a terminal."""

from __future__ import annotations

from collections.abc import Iterator

import click
import pytest

from appliance.cli import main
from appliance.cli.progress import OpProgress


def _commands(group: click.Group, prefix: str = "") -> Iterator[tuple[str, click.Command]]:
    for name, cmd in group.commands.items():
        if isinstance(cmd, click.Group):
            yield from _commands(cmd, f"{prefix}{name} ")
        yield f"{prefix}{name}", cmd


def test_every_listing_command_has_json() -> None:
    listings = [(name, cmd) for name, cmd in _commands(main)
                if name.split()[-1] in ("list", "show", "status", "members") or name in ("disks", "durability")]
    assert len(listings) >= 10
    missing = [name for name, cmd in listings if "--json" not in {o for p in cmd.params for o in p.opts}]
    assert missing == []


def test_plain_progress_lines(capsys: pytest.CaptureFixture[str]) -> None:
    p = OpProgress(None, lambda d: f"healing {d['done']}", plain=True)
    p({"done": 1, "total": 10})
    p({"done": 2, "total": 10})  # within PLAIN_EVERY of the first: not printed
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("healing 1 1/10 (")
