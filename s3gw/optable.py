"""The operation table: every name the router returns (routing.Op) -> its handler.

Built once, at import, from the handler groups in ops_*.py, and checked then: every routed
name has exactly one handler or an entry in the not-implemented table (routing.REFUSED), never
both, every handler belongs to a routed name, and every handled name has its S3 actions in
authz.py (so nothing runs unauthorized). A misspelt or forgotten name
fails the import with OperationTableError instead of answering NotImplemented at run time.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from . import (
    ops_access,
    ops_attributes,
    ops_bucket,
    ops_bucket_tagging,
    ops_cors,
    ops_encryption,
    ops_lifecycle,
    ops_list,
    ops_lock,
    ops_logging,
    ops_multipart,
    ops_notification,
    ops_object,
    ops_replication,
    ops_restore,
    ops_tiering,
    postobject,
)
from .authz import AUTHORIZED
from .ctx import OpHandler
from .routing import REFUSED, Op


class OperationTableError(Exception):
    """The handler groups, the router's names and the not-implemented table disagree."""


def build_table(groups: Iterable[Mapping[str, OpHandler]], refused: Mapping[Op, str],
                authorized: frozenset[Op] = AUTHORIZED) -> dict[Op, OpHandler]:
    table: dict[str, OpHandler] = {}
    problems: list[str] = []
    for group in groups:
        for name, handler in group.items():
            if name in table:
                problems.append(f"'{name}' has two handlers")
            table[name] = handler
    names = {op.value for op in Op}
    problems += [f"handler '{name}' is not a name the router returns" for name in table.keys() - names]
    problems += [f"'{name}' has a handler and is in the not-implemented table" for name in table.keys() & refused]
    problems += [f"routed name '{name}' has no handler and is not in the not-implemented table"
                 for name in names - table.keys() - refused.keys()]
    problems += [f"'{name}' has a handler but no S3 action in authz.py" for name in table.keys() & names
                 if Op(name) not in authorized]
    if problems:
        raise OperationTableError("S3 operation table: " + "; ".join(sorted(problems)))
    return {Op(name): handler for name, handler in table.items()}


OPERATIONS = build_table((ops_access.OPS, ops_attributes.OPS, ops_bucket.OPS, ops_bucket_tagging.OPS, ops_cors.OPS,
                          ops_encryption.OPS, ops_lifecycle.OPS, ops_list.OPS, ops_lock.OPS, ops_logging.OPS,
                          ops_multipart.OPS, ops_notification.OPS, ops_object.OPS, ops_replication.OPS,
                          ops_restore.OPS, ops_tiering.OPS, postobject.OPS),
                         REFUSED)
