"""A fault-injecting disk for tests: a FUSE passthrough filesystem run in its own process.

Mounted over a directory and used as a data disk or the metadata disk of a test appliance, it
can be told at run time (FaultControl, over a control socket) to fail operations with EIO or
ENOSPC (all, by path pattern, with a probability), add latency, hang operations until
released, stall for a while, report itself full, and cut the power: every write that was not
made durable by fsync/fdatasync (file data, new names, renames and unlinks not followed by a
directory fsync) is discarded.

    durability.py  the durable state of the backing tree and the power cut (no FUSE: unit-tested)
    rules.py       fault rules, the "full" state and the power switch
    fs.py          the pyfuse3 passthrough operations
    control.py     the control socket and its client, FaultControl
    disk.py        FaultDisk: start/stop one mount in its own process
    __main__.py    the process: `python -m tests.faultfs BASE MOUNTPOINT CONTROL_SOCKET`
"""

from .control import ControlError, FaultControl
from .disk import FaultDisk, usable

__all__ = ["ControlError", "FaultControl", "FaultDisk", "usable"]
