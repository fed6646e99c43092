"""The object-store facade: the one API both frontends (S3, FUSE) and the services use.

Contract in docs/engine-api.md. The implementation is split by job: storecore.py (buckets,
versions, commits), multipart.py (uploads), patch.py (the mount's partial-rewrite commit),
links.py (the mount's hard links and directory times), lifecyclestore.py (lifecycle rules and
the lifecycle worker's conditional actions), lockstore.py (object lock settings; the rules are
lock.py's), logstore.py (bucket logging settings), listing.py (range-scan listings),
segments.py (the erasure-coded data path), upkeep.py (the narrow queries of the background
services).
"""

from __future__ import annotations

from .balancestore import BalanceStore
from .lifecyclestore import LifecycleStore
from .links import LinkStore
from .listing import ListPage, UploadPage, VersionPage
from .lockstore import LockStore
from .logstore import LoggingStore
from .multipart import MultipartStore, multipart_etag
from .patch import PatchStore, ReadRange
from .restorestore import RestoreStore
from .segments import BodySummary
from .storecore import Capacity, DeleteResult, NewVersion, PutMeta, Txn, new_version_id, unquote_etag
from .tieringstore import TieringConfigStore
from .upkeep import UpkeepStore
from .usagestore import UsageStore


class ObjectStore(MultipartStore, PatchStore, LinkStore, LockStore, UpkeepStore, LoggingStore, LifecycleStore,
                  RestoreStore, UsageStore, BalanceStore, TieringConfigStore):
    """Everything the frontends and the services call. See docs/engine-api.md."""


__all__ = [
    "BodySummary", "Capacity", "DeleteResult", "ListPage", "NewVersion", "ObjectStore", "PutMeta", "ReadRange", "Txn",
    "UploadPage", "VersionPage", "multipart_etag", "new_version_id", "unquote_etag",
]
