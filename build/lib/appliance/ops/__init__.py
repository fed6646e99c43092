"""Control-socket operations: what `stowage` commands ask the running daemon to do.

Each module registers its handlers on the ControlServer (appliance/control.py) with the narrow
parts of the daemon it needs (the store, the service bundle, the pools), never the Daemon
itself, so nothing here forms a cycle with appliance.daemon, which calls every `register`.

    iam.py       user.*, key.*, group.*, policy.*
    disks.py     disks.attach, disks.counters
    healing.py   heal.*, scrub.*, disks.drain/remove/replace/check, meta.snapshot
    kms.py       kms.key.*, kms.rotate-master

To add an operation: a handler `async (args, emit) -> result` registered here, raising the
engine's errors (the control server turns them into {"ok": false, "error": code}).
"""
