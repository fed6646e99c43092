"""Keys of the event key spaces (notifications, replication): keys.py names their leading bytes.

    O b<bucket>                     EventConfigRecord: the bucket's notification and replication rules
    O t<name>                       EventTargetRecord: a notification target added by `stowage notify`
    O r<name>                       EventTargetRecord: a replication target (remote S3 endpoint)
    O s<name>                       counters kept across restarts (u64: overflowed events, ...)
    o<target>\\0<seq:8>              QueuedEvent for a notification target, in commit order
    J<target>\\0<seq:8>              QueuedEvent for a replication target, in commit order
    j<bucket>\\0<key>\\0<version id>  ReplicationState of one version

Queue sequence numbers are assigned under the store's commit lock, so key order is commit order.
"""

from __future__ import annotations

import struct

from .keys import EVENT_CONFIG, NOTIFY_QUEUE, REPLICATION_QUEUE, REPLICATION_STATE, SEP


def config(bucket: str) -> bytes:
    return EVENT_CONFIG + b"b" + bucket.encode()


CONFIGS = EVENT_CONFIG + b"b"


def notify_target(name: str) -> bytes:
    return EVENT_CONFIG + b"t" + name.encode()


NOTIFY_TARGETS = EVENT_CONFIG + b"t"


def replication_target(name: str) -> bytes:
    return EVENT_CONFIG + b"r" + name.encode()


REPLICATION_TARGETS = EVENT_CONFIG + b"r"


def counter(name: str) -> bytes:
    return EVENT_CONFIG + b"s" + name.encode()


def queue_prefix(space: bytes, target: str) -> bytes:
    return space + target.encode() + SEP


def queued(space: bytes, target: str, seq: int) -> bytes:
    return queue_prefix(space, target) + struct.pack(">Q", seq)


def queued_seq(raw: bytes) -> int:
    return int(struct.unpack(">Q", raw[-8:])[0])


def queued_target(raw: bytes) -> str:
    """The target name of a queue key (names never contain NUL)."""
    return raw[1:-9].decode()


def notify_queued(target: str, seq: int) -> bytes:
    return queued(NOTIFY_QUEUE, target, seq)


def replication_queued(target: str, seq: int) -> bytes:
    return queued(REPLICATION_QUEUE, target, seq)


def state(bucket: str, key: str, version_id: str) -> bytes:
    return REPLICATION_STATE + bucket.encode() + SEP + key.encode() + SEP + version_id.encode()


def state_bucket_prefix(bucket: str) -> bytes:
    return REPLICATION_STATE + bucket.encode() + SEP
