"""The root of Stowage's one error model, and the errors of the disk layer.

Every failure reported on purpose is a StowageError with a stable `code`; the edges translate
once (s3gw: S3 error code and status, fusefs: errno, CLI: exit status). The root lives here,
in the lowest layer, because the dependency order (diskmgr <- appliance.engine <- ...) lets every
layer import diskmgr and diskmgr import nothing above it; appliance.engine.errors re-exports
these and adds the engine's own.
"""

from __future__ import annotations


class StowageError(Exception):
    """Base of every error the core reports on purpose."""

    code = "InternalError"

    def __init__(self, message: str = "", **context: object) -> None:
        super().__init__(message or self.__class__.__doc__ or self.code)
        self.message = message or (self.__class__.__doc__ or self.code).strip()
        self.context = context


class DiskError(StowageError):
    """A disk failed an operation."""

    code = "DiskError"


class FormatError(StowageError):
    """An on-disk format is unknown or damaged."""

    code = "FormatError"


class InvalidDiskArgument(DiskError):
    """An argument of a disk operation is not valid (a device, a role, a pool name)."""

    code = "InvalidArgument"


class DiskStateError(DiskError):
    """A disk state change that the state machine (diskmgr.state) does not allow."""

    code = "InvalidDiskState"
