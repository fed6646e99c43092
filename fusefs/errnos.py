"""The one errno table: core errors (appliance.errors codes) become FUSE errnos here, once.

Every Operations handler is wrapped by `fuse_op`, so a failing operation answers the kernel
with an errno and never lets an exception escape into pyfuse3's main loop (which would end
the mount and, with it, the daemon's nursery).
"""

from __future__ import annotations

import errno
import functools
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, ParamSpec, TypeVar

import pyfuse3

from appliance.engine.errors import StowageError

log = logging.getLogger("stowage.fuse")

ERRNO_BY_CODE: dict[str, int] = {
    "NoSuchBucket": errno.ENOENT,
    "NoSuchKey": errno.ENOENT,
    "NoSuchVersion": errno.ENOENT,
    "BucketAlreadyOwnedByYou": errno.EEXIST,
    "BucketNotEmpty": errno.ENOTEMPTY,
    "InvalidBucketName": errno.EINVAL,
    "KeyTooLongError": errno.ENAMETOOLONG,
    "InvalidArgument": errno.EINVAL,
    "PreconditionFailed": errno.EEXIST,  # only RENAME_NOREPLACE / O_EXCL style conditions reach us
    "MetadataTooLarge": errno.E2BIG,
    "InsufficientStorage": errno.ENOSPC,
    "InsufficientShards": errno.EIO,
    "DiskError": errno.EIO,
    "FormatError": errno.EIO,
    "MethodNotAllowed": errno.EPERM,
    # server-side encryption: data the mount has no key for (SSE-C), or whose KMS key is off
    "SseCustomerKeyRequired": errno.EACCES,
    "SseCustomerKeyMismatch": errno.EACCES,
    "KMS.DisabledException": errno.EACCES,
    "KMS.NotFoundException": errno.EACCES,
    "ObjectLocked": errno.EPERM,  # a version object lock protects (engine/lock.py)
    # an archived file (GLACIER, DEEP_ARCHIVE) not restored, until RestoreObject has made its copy
    # (docs/lifecycle.md). Not EAGAIN: on a regular file, readers such as Python's readall()
    # take EAGAIN for "no data yet" and return what they have, an empty file, without an error.
    "InvalidObjectState": errno.ENODATA,
    "QuotaExceeded": errno.EDQUOT,  # a hard quota of the bucket or its owner (`stowage quota set`)
}


def errno_for(exc: BaseException) -> int:
    if isinstance(exc, BaseExceptionGroup):
        # a failure inside an engine nursery (a full disk during a streamed write) arrives
        # wrapped: its own errno, not EIO, when one of its members has one
        codes = [errno_for(e) for e in exc.exceptions]
        return next((c for c in codes if c != errno.EIO), errno.EIO)
    if isinstance(exc, pyfuse3.FUSEError):
        return exc.errno
    if isinstance(exc, StowageError):
        return ERRNO_BY_CODE.get(exc.code, errno.EIO)
    if isinstance(exc, OSError) and exc.errno:
        return exc.errno
    return errno.EIO


def fail(code: int) -> pyfuse3.FUSEError:
    return pyfuse3.FUSEError(code)


P = ParamSpec("P")
R = TypeVar("R")


def fuse_op(fn: Callable[P, Awaitable[R]]) -> Callable[P, Coroutine[Any, Any, R]]:
    """Translate any failure of a handler into FUSEError(errno); log the unexpected ones."""

    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await fn(*args, **kwargs)
        except pyfuse3.FUSEError:
            raise
        except StowageError as exc:
            code = errno_for(exc)
            if code == errno.EIO:
                log.error("%s failed: %s (%s)", fn.__name__, exc.message, exc.code)
            raise pyfuse3.FUSEError(code) from None
        except OSError as exc:
            log.warning("%s failed: %s", fn.__name__, exc)
            raise pyfuse3.FUSEError(errno_for(exc)) from None
        except ExceptionGroup as group:
            code = errno_for(group)
            if code == errno.EIO:
                log.exception("%s failed unexpectedly", fn.__name__)
            raise pyfuse3.FUSEError(code) from None
        except Exception:
            log.exception("%s failed unexpectedly", fn.__name__)
            raise pyfuse3.FUSEError(errno.EIO) from None

    return wrapper
