"""`python -m tests.faultfs BASE MOUNTPOINT CONTROL_SOCKET`: serve one fault disk until SIGTERM.

BASE holds the backing tree (BASE/tree, what the mount shows) and the power-cut journal's
limbo; it is reused by a later run (whatever is in BASE/tree then counts as durable).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
from pathlib import Path

import pyfuse3
import trio

from .control import ControlServer
from .durability import Durability
from .fs import FaultFS
from .rules import Faults

log = logging.getLogger("faultfs")


async def serve(base: Path, mountpoint: Path, control: Path) -> None:
    fs = FaultFS(Durability(base), Faults())
    options = set(pyfuse3.default_options) | {"fsname=faultfs", "subtype=faultfs", "allow_other"}
    pyfuse3.init(fs, str(mountpoint), options)
    try:
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(pyfuse3.main, 1, 512)
                await nursery.start(ControlServer(fs, control).serve)
                log.info("faultfs: %s over %s, control %s", mountpoint, base, control)
                async for _ in signals:
                    nursery.cancel_scope.cancel()
                    break
    finally:
        pyfuse3.close(unmount=True)


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m tests.faultfs")
    p.add_argument("base", type=Path)
    p.add_argument("mountpoint", type=Path)
    p.add_argument("control", type=Path)
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    os.umask(0)  # modes come from the callers, as on a real filesystem
    trio.run(serve, args.base.resolve(), args.mountpoint.resolve(), args.control.resolve())


if __name__ == "__main__":
    main()
