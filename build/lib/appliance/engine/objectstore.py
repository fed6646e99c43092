"""The object-store facade: the one API both frontends (S3, FUSE) and the services use.

Contract in docs/engine-api.md. The implementation is split by job: storecore.py (buckets,
versions, commits), multipart.py (uploads), patch.py (the mount's partial-rewrite commit),
links.py (the mount's hard links and directory times), lockstore.py (object lock settings;
the rules are lock.py's), listing.py (range-scan listings),
segments.py (the erasure-coded data path), upkeep.py (the narrow queries of the background
services).
"""

from __future__ import annotations

from .links import LinkStore
from .listing import ListPage, UploadPage, VersionPage
from .lockstore import LockStore
from .multipart import MultipartStore, multipart_etag
from .patch import PatchStore, ReadRange
from .segments import BodySummary
from .storecore import Capacity, DeleteResult, PutMeta, Txn, new_version_id, unquote_etag
from .upkeep import UpkeepStore


class ObjectStore(MultipartStore, PatchStore, LinkStore, LockStore, UpkeepStore):
    """Everything the frontends and the services call. See docs/engine-api.md."""


__all__ = [
    "BodySummary", "Capacity", "DeleteResult", "ListPage", "ObjectStore", "PutMeta", "ReadRange", "Txn",
    "UploadPage", "VersionPage", "multipart_etag", "new_version_id", "unquote_etag",
]
