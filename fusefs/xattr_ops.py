"""Extended attributes (the `user.` namespace), kept in s3fs's `xattr` user-metadata entry."""

from __future__ import annotations

import errno

import pyfuse3
from pyfuse3 import RequestContext

from .attrs import XATTR_MAX_BYTES, Posix, now_ns, with_xattrs, xattrs_of
from .errnos import fail, fuse_op
from .inodes import BUCKET, DIR, ROOT, Node
from .nodes import NodeOps
from .paths import marker_key


class XattrOps(NodeOps):
    """Mixin of StowageFS: the xattr handlers."""

    def _user_meta(self, node: Node) -> dict[str, str]:
        if node.removed is not None:
            return dict(node.removed.user_meta)
        if node.kind in (ROOT, BUCKET):
            return {}
        if node.kind == DIR:
            marker = self.tree.head(node.bucket, marker_key(node.path))
            return dict(marker.user_meta) if marker else {}
        st = node.state
        if st is not None and (st.changed or st.meta_changed or node.detached):
            return st.user_meta
        v = self.tree.head(node.bucket, node.path)
        if v is None:
            raise fail(errno.ENOENT)
        return dict(v.user_meta)

    @staticmethod
    def _xname(name: bytes) -> str:
        # Other namespaces are not supported at all: ENOTSUP (not ENODATA) lets `ls -l` and
        # coreutils stop asking for security.selinux and system.posix_acl_* on this file system
        # after the first file (they remember it per device), instead of two requests per file.
        if not name.startswith(b"user."):
            raise fail(errno.ENOTSUP)
        if name == b"user.":  # a namespace without a name: EINVAL, as the kernel's own handlers answer
            raise fail(errno.EINVAL)
        try:
            return name.decode("utf-8")
        except UnicodeDecodeError:
            raise fail(errno.EINVAL) from None

    @fuse_op
    async def getxattr(self, inode: int, name: bytes, ctx: RequestContext) -> bytes:
        xname = self._xname(name)
        node = self.inodes.get(inode)
        await self._after_renames(node)
        value = xattrs_of(self._user_meta(node)).get(xname)
        if value is None:
            raise fail(pyfuse3.ENOATTR)
        return value

    @fuse_op
    async def listxattr(self, inode: int, ctx: RequestContext) -> list[bytes]:
        # only the user. namespace: names of others an S3 writer put there are not ours to show
        node = self.inodes.get(inode)
        await self._after_renames(node)
        return [k.encode() for k in xattrs_of(self._user_meta(node)) if k.startswith("user.")]

    @fuse_op
    async def setxattr(self, inode: int, name: bytes, value: bytes, ctx: RequestContext) -> None:
        if not name.startswith(b"user."):
            raise fail(errno.ENOTSUP)
        xname = self._xname(name)
        node = self.inodes.get(inode)
        if node.kind in (ROOT, BUCKET):
            raise fail(errno.ENOTSUP)
        await self._after_renames(node)
        xattrs = xattrs_of(self._user_meta(node))
        xattrs[xname] = bytes(value)
        if len(with_xattrs({}, xattrs).get("xattr", "")) > XATTR_MAX_BYTES:
            raise fail(errno.E2BIG)

        def mutate(p: Posix, um: dict[str, str]) -> None:
            um.update(with_xattrs(um, xattrs))
            p.ctime_ns = now_ns()

        await self._set_meta(node, mutate)

    @fuse_op
    async def removexattr(self, inode: int, name: bytes, ctx: RequestContext) -> None:
        xname = self._xname(name)
        node = self.inodes.get(inode)
        await self._after_renames(node)
        xattrs = xattrs_of(self._user_meta(node))
        if xattrs.pop(xname, None) is None:
            raise fail(pyfuse3.ENOATTR)

        def mutate(p: Posix, um: dict[str, str]) -> None:
            new = with_xattrs(um, xattrs)
            um.clear()
            um.update(new)
            p.ctime_ns = now_ns()

        await self._set_meta(node, mutate)

