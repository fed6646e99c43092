"""Whether the mount may honour the POSIX attributes an S3 write carries (PutMeta.posix_trusted).

A PUT, a CopyObject or a CreateMultipartUpload that carries `mode`, `uid` or `gid` metadata is
trusted only when its principal is allowed `stowage:PutPosixAttributes` on the destination
object (appliance/iam/posixattrs.py); one that carries none is trusted (there is nothing to
honour). A copy that keeps the source's metadata never turns untrusted attributes into trusted
ones, and one by a principal without the permission makes trusted ones untrusted: copying
attributes is setting them. setuid/setgid bits are dropped from every write.
"""

from __future__ import annotations

from appliance.engine import ObjectVersion, PutMeta
from appliance.iam.posixattrs import carries_posix, may_put_posix, without_setid

from .ctx import Ctx


def _allowed(ctx: Ctx) -> bool:
    """Policies only: neither an ACL grant nor owning the bucket gives local powers."""
    policy = ctx.view.policy if ctx.view is not None else None
    return may_put_posix(ctx.principal, ctx.authz.identity_policies(ctx.principal),
                         policy.policy if policy is not None else None, ctx.bucket, ctx.key, ctx.conditions)


def vouch(ctx: Ctx, meta: PutMeta, *, source_trusted: bool = True) -> PutMeta:
    """Set meta.posix_trusted for this request and drop setuid/setgid from its mode (in place).
    `source_trusted`: for metadata copied from a source object, that object's flag."""
    meta.user_meta = without_setid(meta.user_meta)
    meta.posix_trusted = not carries_posix(meta.user_meta) or (source_trusted and _allowed(ctx))
    return meta


def vouch_copy(ctx: Ctx, src: ObjectVersion, meta: PutMeta | None) -> PutMeta | None:
    """The metadata of a CopyObject with the COPY directive: `meta` is None (the source's kept as
    they are) or PutMeta.of(src) with other changes. None stays None unless the source's POSIX
    attributes must become untrusted or lose setuid/setgid here."""
    kept = vouch(ctx, meta or PutMeta.of(src), source_trusted=src.posix_trusted)
    if meta is None and kept.user_meta == src.user_meta and kept.posix_trusted == src.posix_trusted:
        return None
    return kept
