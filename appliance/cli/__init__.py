"""The `stowage` command line (click): thin callers of the running daemon's control socket, or,
with the daemon stopped, of the engine's offline functions (appliance.engine.offline,
appliance.engine.recover).

    main.py         the group, `serve` and `status`
    common.py       --config/--data, errors -> one line and an exit status (78 for configuration)
    iam.py          `user`, `key`, `group`, `policy`
    heal.py         `scrub`, `heal`, `snapshot-metadata`, `recover-metadata`
    disks.py        `disks list|smart|add|remove|replace` (the host-side disk tools of diskmgr)
    mountcmd.py     `abort-mount`: free a mount a dead daemon left hanging (systemd's ExecStopPost)
    offline.py      status without a daemon; status_view.py renders status with rich
    progress.py     rich progress of streamed control operations; sizes.py human-readable sizes

May import anything (it is a composition root beside appliance.daemon); nothing imports it but
appliance.__main__ and the `stowage` entry point. To add a command: a click command in the
module of its area, registered in main.py; when it needs the daemon, a control op in
appliance/ops/ and `control.call` here.
"""

from .main import main

__all__ = ["main"]
