"""The engine's errors: the one error model of the core.

Every failure the engine can report is a subclass of StowageError with a stable `code`.
The edges translate once: s3gw maps `code` to an S3 error (status + XML), fusefs maps it to
an errno, the CLI maps it to an exit status. Nothing below the edges knows about HTTP or errno.
"""

from __future__ import annotations

from diskmgr.errors import DiskError, FormatError, StowageError

# --- buckets -------------------------------------------------------------------------------


class NoSuchBucket(StowageError):
    """The specified bucket does not exist."""

    code = "NoSuchBucket"


class BucketAlreadyOwnedByYou(StowageError):
    """The bucket you tried to create already exists, and you own it."""

    code = "BucketAlreadyOwnedByYou"


class BucketNotEmpty(StowageError):
    """The bucket you tried to delete is not empty."""

    code = "BucketNotEmpty"


class InvalidBucketName(StowageError):
    """The specified bucket is not valid."""

    code = "InvalidBucketName"


# --- objects -------------------------------------------------------------------------------


class NoSuchKey(StowageError):
    """The specified key does not exist."""

    code = "NoSuchKey"


class NoSuchVersion(StowageError):
    """The specified version does not exist."""

    code = "NoSuchVersion"


class MethodNotAllowed(StowageError):
    """The specified method is not allowed against this resource."""

    code = "MethodNotAllowed"


class VersionExists(StowageError):
    """A replica write names a version id the key holds already (version ids are unique per key:
    writing it again would hide the version under it, a locked one too)."""

    code = "InvalidRequest"


class KeyTooLong(StowageError):
    """Your key is too long."""

    code = "KeyTooLongError"


class InvalidKey(StowageError):
    """The object key is not valid."""

    code = "InvalidArgument"


class InvalidArgument(StowageError):
    """Invalid Argument."""

    code = "InvalidArgument"


class PreconditionFailed(StowageError):
    """At least one of the pre-conditions you specified did not hold."""

    code = "PreconditionFailed"


class InvalidRange(StowageError):
    """The requested range is not satisfiable."""

    code = "InvalidRange"


class MetadataTooLarge(StowageError):
    """Your metadata headers exceed the maximum allowed metadata size."""

    code = "MetadataTooLarge"


class BadDigest(StowageError):
    """The Content-MD5 or checksum you specified did not match what we received."""

    code = "BadDigest"


class InvalidStorageClass(StowageError):
    """The storage class you specified is not valid (not an AWS class nor one configured)."""

    code = "InvalidStorageClass"


class QuotaExceeded(StowageError):
    """The write would take a bucket (or its owner) past a hard quota (`stowage quota set`)."""

    code = "QuotaExceeded"


class InvalidObjectState(StowageError):
    """The object is archived (GLACIER, DEEP_ARCHIVE) and not restored: RestoreObject first."""

    code = "InvalidObjectState"


class RestoreAlreadyInProgress(StowageError):
    """Object restore is already in progress."""

    code = "RestoreAlreadyInProgress"


# --- multipart -----------------------------------------------------------------------------


class NoSuchUpload(StowageError):
    """The specified multipart upload does not exist."""

    code = "NoSuchUpload"


class InvalidPart(StowageError):
    """One or more of the specified parts could not be found."""

    code = "InvalidPart"


class InvalidPartOrder(StowageError):
    """The list of parts was not in ascending order."""

    code = "InvalidPartOrder"


class EntityTooSmall(StowageError):
    """Your proposed upload is smaller than the minimum allowed object size."""

    code = "EntityTooSmall"


# --- object lock ---------------------------------------------------------------------------


class ObjectLocked(StowageError):
    """The object version is protected by object lock (a retention that has not expired, or a
    legal hold): nobody may delete it or replace it."""

    code = "ObjectLocked"


class ObjectLockNotEnabled(StowageError):
    """Bucket is missing Object Lock Configuration."""

    code = "InvalidRequest"


class InvalidBucketState(StowageError):
    """The request is not valid for the bucket's current state (versioning of a bucket with
    object lock, object lock on a bucket without versioning)."""

    code = "InvalidBucketState"


# --- storage -------------------------------------------------------------------------------


class InsufficientShards(StowageError):
    """Too many shards of a segment are missing or corrupt to reconstruct its data."""

    code = "InsufficientShards"


class InsufficientStorage(StowageError):
    """The pool cannot hold the data: not enough healthy disks with free space."""

    code = "InsufficientStorage"


class MetadataUnavailable(StowageError):
    """The metadata cannot take a commit: the metadata DB failed a write, or no data disk accepts
    the metadata journal (S3: 503; writes are refused, reads go on)."""

    code = "ServiceUnavailable"


# --- encryption ----------------------------------------------------------------------------


class DataIntegrityError(StowageError):
    """A block of an encrypted segment fails authentication with every combination of its
    readable chunks: its data was altered. Never answered with the unauthenticated bytes; the
    frontends report an internal error (S3 500, EIO)."""

    code = "DataIntegrityError"


class EncryptionKeyRequired(StowageError):
    """An encrypted segment was read without a key resolver (a caller's bug, not a user error)."""

    code = "EncryptionKeyRequired"


__all__ = ["DiskError", "FormatError", "StowageError"]  # re-exported: defined in diskmgr.errors
