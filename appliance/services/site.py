"""Site replication: boxes joined with `stowage site add URL` keep their buckets and bucket
configurations, users, groups, policies, access keys and KMS keys the same, and replicate every
versioned bucket's objects both ways (docs/site-replication.md).

- Records: sitelog.py captures each change of a replicated record in the commit that makes it
  and queues it for every peer; per peer, a sender POSTs the queue in order, in batches, to the
  peer's site endpoint (sitewire.py) and removes what the peer acknowledged (it applied it in a
  durable commit before answering). A peer that cannot be reached is retried with backoff:
  nothing is dropped. The last writer wins by hybrid logical clock (sitehlc.py); concurrent
  writes are reported as conflicts in `stowage site status`. No leader, no quorum.
- Objects: each peer is a replication target `site:<peer>` of the bucket replication service,
  and every versioned bucket has an implicit rule to the same bucket there (replicas are never
  replicated back, so the boxes converge without loops).
- Join: the box running `site add` proves to the peer (signed by the peer's admin key, given to
  `site add`) that it holds the same master key (it sends the key the peer will call back with,
  wrapped by it), then both queue their whole state for each other; conflicting records (the
  same name made on both boxes before the join) are resolved and reported like any other. The
  new box is then asked to join each other peer of this box (introduce), so a site is a full
  mesh; `remove` tells the peer, which drops this box too (leave).
- Notification and replication targets stay per box: `problems` lists the rules naming a target
  this box lacks (shown by `stowage site status`).
"""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, field
from typing import Any

import trio

from appliance.engine import events_keys, keys
from appliance.engine.errors import StowageError
from appliance.engine.eventrules import ReplicationRule
from appliance.engine.objectstore import ObjectStore
from appliance.engine.records import BucketRecord, EventConfigRecord, SiteChange, SiteConflict, SitePeerRecord
from appliance.engine.storecore import Txn

from . import sitekeys
from .notify import live_config
from .notifytargets import SecretWrapper
from .replicatargets import RemoteTarget
from .replicate import ReplicationService
from .s3push import Endpoint
from .sitehlc import ClockSkew, Hlc, describe
from .sitelog import Applied, SiteLog, apply_change
from .sitewire import BadDocument, Introduction, JoinRequest, PeerClient, SiteError, change_json, check_url

log = logging.getLogger("stowage.site")
BATCH = 256
FIRST_RETRY = 0.2
RETRY_MAX = 5.0
LEAVE_TIMEOUT = 10.0
IDLE_RESCAN = 1.0
INTRODUCE_CONTEXT = b"stowage-site-introduce"
KEEP_CONFLICTS = 100
TARGET_PREFIX = "site:"


def secret_context(peer: str) -> bytes:
    return b"stowage-site-peer:" + peer.encode()


@dataclass
class PeerState:
    rec: SitePeerRecord
    client: PeerClient
    sent: int = 0
    conflicts: int = 0
    last_error: str = ""
    last_sent_ns: int = 0
    retrying_since_ns: int = 0

    def to_json(self, queued: int, oldest_ns: int) -> dict[str, Any]:
        now = time.time_ns()
        return {"name": self.rec.name, "url": self.rec.url, "access_key": self.rec.access_key,
                "queued": queued, "sent": self.sent, "lag_seconds": round((now - oldest_ns) / 1e9, 3)
                if oldest_ns else 0.0, "retrying": bool(self.retrying_since_ns), "last_error": self.last_error,
                "last_sent_ns": self.last_sent_ns, "conflicts_at_peer": self.conflicts,
                "object_target": TARGET_PREFIX + self.rec.name}


@dataclass
class SiteService:
    store: ObjectStore
    master: SecretWrapper
    replication: ReplicationService | None
    # the key peers call this box with: (access key, secret) of the site user (made on first use)
    site_key: Callable[[], Awaitable[tuple[str, str]]]
    refresh_identities: Callable[[], Awaitable[None]]  # after a peer changed users, groups, policies, keys
    root_canonical_id: str
    # the notification targets this box has (targets are per box: a replicated rule may name
    # one it lacks, a problem `status` shows)
    notify_targets: Callable[[], Collection[str]] = tuple
    clock: Hlc = field(default_factory=Hlc)
    peers: dict[str, PeerState] = field(default_factory=dict)
    received: int = 0
    conflicts_seen: int = 0
    log: SiteLog = field(init=False)
    _nursery: trio.Nursery | None = None
    _senders: dict[str, trio.CancelScope] = field(default_factory=dict)
    _wakes: dict[str, trio.Event] = field(default_factory=dict)
    _lock: trio.Lock = field(default_factory=trio.Lock)  # one join or removal at a time

    def __post_init__(self) -> None:
        self.log = SiteLog(self.store.db, self.store.db.appliance_id, self.clock)

    @property
    def name(self) -> str:
        return self.log.name

    # --- start-up ---------------------------------------------------------------------------------

    def load(self) -> None:
        db = self.store.db
        for _, rec in db.scan_records(SitePeerRecord, sitekeys.PEER):
            try:
                self._install(rec)
            except StowageError as exc:  # its key no longer opens (another master key): the box still serves
                log.error("site peer %s (%s) cannot be used: %s", rec.name, rec.url, exc)
        for k, raw in db.scan(keys.SITE_QUEUE):
            self.log.seq = max(self.log.seq, sitekeys.queued_seq(k))
            # this box's clock stays past what it stamped before a restart, whatever the wall clock says
            self.clock.last = max(self.clock.last, SiteChange.decode(raw).hlc)
        db.write_hooks.append(self.log.hook)
        if self.replication is not None:
            self.replication.site_rules = self.bucket_rules

    def _install(self, rec: SitePeerRecord) -> PeerState:
        secret = self.master.unwrap(base64.b64decode(rec.wrapped), secret_context(rec.name)).decode()
        st = self.peers[rec.name] = PeerState(rec, PeerClient(rec.url, rec.access_key, secret, rec.region,
                                                              rec.tls_verify))
        self.log.peers = tuple(sorted(self.peers))
        if self.replication is not None:
            pool = self.replication.cfg.replication.workers * 2
            self.replication.attach(RemoteTarget(TARGET_PREFIX + rec.name, "stowage", Endpoint(
                rec.url, rec.access_key, secret, rec.region, rec.tls_verify, pool)))
        self._start_sender(rec.name)
        return st

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        token = trio.lowlevel.current_trio_token()
        self.log.on_queued = lambda: token.run_sync_soon(self._wake_senders)
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            for name in self.peers:
                self._start_sender(name)
            task_status.started()
            await trio.sleep_forever()

    def _wake_senders(self) -> None:
        for wake in self._wakes.values():
            wake.set()

    def _start_sender(self, name: str) -> None:
        if self._nursery is None or name in self._senders:
            return
        scope = self._senders[name] = trio.CancelScope()
        self._nursery.start_soon(self._sender, name, scope)

    # --- objects: the implicit rule of every versioned bucket -----------------------------------------

    def bucket_rules(self, t: Txn, bucket: str) -> list[ReplicationRule]:
        peers = self.log.peers
        if not peers:
            return []
        rec = t.batch.get_record(BucketRecord, keys.bucket(bucket))
        if rec is None or rec.versioning != "Enabled":
            return []
        return [ReplicationRule(TARGET_PREFIX + p, 0, True, TARGET_PREFIX + p, bucket, delete_markers=True,
                                existing_objects=True, kms_objects=True) for p in peers]

    # --- joining ----------------------------------------------------------------------------------------

    async def add(self, url: str, access_key: str, secret_key: str, self_url: str, region: str = "us-east-1",
                  tls_verify: bool = True, *, introduce: bool = True) -> dict[str, Any]:
        """Join the box at `url` (signed with its admin key) to this box's site; with
        `introduce`, then ask it to join each of this box's other peers too (a full mesh)."""
        url, self_url = check_url(url), check_url(self_url)
        async with self._lock:
            site_ak, site_sk = await self.site_key()
            client = PeerClient(url, access_key, secret_key, region, tls_verify)
            answer = await client.acall("join", {
                "name": self.name, "url": self_url, "access_key": site_ak,
                "wrapped_secret": base64.b64encode(self.master.wrap(site_sk.encode(), b"stowage-site-join")).decode(),
                "root_canonical_id": self.root_canonical_id, "region": region, "tls_verify": tls_verify})
            name, root = answer.get("name"), answer.get("root_canonical_id", "")
            if not isinstance(name, str) or not name or not isinstance(root, str):
                raise SiteError(f"{url} answered the join without its site name")
            if name == self.name:
                raise SiteError(f"{url} is this box")
            rec = SitePeerRecord(name, url, access_key, self._wrap(name, secret_key), region, tls_verify, root,
                                 time.time_ns())
            queued = await self._admit(rec)
        log.info("site: joined %s (%s); %d records queued for it", name, url, queued)
        out: dict[str, Any] = {"name": name, "url": url, "queued": queued}
        if introduce:
            out["introduced"], out["not_introduced"] = await self._introduce(name, url)
        return out

    async def _introduce(self, new: str, new_url: str) -> tuple[list[str], dict[str, str]]:
        """Ask the new peer to join every other peer of this box, with the key this box holds for
        it (wrapped by the shared master key); returns who was joined and why others were not."""
        joined: list[str] = []
        failed: dict[str, str] = {}
        target = self.peers.get(new)
        for name, st in sorted(self.peers.items()):
            if name == new or target is None:
                continue
            wrapped = self.master.wrap(st.client.secret_key.encode(), INTRODUCE_CONTEXT)
            try:
                await target.client.acall("introduce", {
                    "name": name, "url": st.rec.url, "access_key": st.rec.access_key,
                    "wrapped_secret": base64.b64encode(wrapped).decode(), "region": st.rec.region,
                    "tls_verify": st.rec.tls_verify, "self_url": new_url})
                joined.append(name)
            except SiteError as exc:
                failed[name] = str(exc)
                log.warning("site: %s could not join %s: %s (run `stowage site add` for that pair)", new, name, exc)
        return joined, failed

    async def receive_introduce(self, intro: Introduction) -> dict[str, Any]:
        """A peer asks this box to join one of its peers (authorized by the caller:
        stowage:SiteReplicate); the join is not introduced further."""
        if intro.name == self.name or intro.name in self.peers:
            return {"name": self.name, "joined": False}
        try:
            secret = self.master.unwrap(base64.b64decode(intro.wrapped_secret), INTRODUCE_CONTEXT).decode()
        except StowageError:
            raise SiteError("this box cannot open the key it was introduced with (another master key)") from None
        await self.add(intro.url, intro.access_key, secret, intro.self_url, intro.region, intro.tls_verify,
                       introduce=False)
        return {"name": self.name, "joined": True}

    async def receive_join(self, req: JoinRequest) -> dict[str, Any]:
        """A box joins this one (authorized by the caller: stowage:SiteReplicate)."""
        try:
            secret = self.master.unwrap(base64.b64decode(req.wrapped_secret), b"stowage-site-join").decode()
        except StowageError:
            raise SiteError("the boxes of a site must share the master key (stowage kms export-master / "
                            "import-master): this box cannot open the joining box's key") from None
        if req.name == self.name:
            raise BadDocument("a box cannot join itself")
        async with self._lock:
            rec = SitePeerRecord(req.name, req.url, req.access_key, self._wrap(req.name, secret), req.region,
                                 req.tls_verify, req.root_canonical_id, time.time_ns())
            await self._admit(rec)
        log.info("site: %s (%s) joined", req.name, req.url)
        return {"name": self.name, "root_canonical_id": self.root_canonical_id}

    def _wrap(self, peer: str, secret: str) -> str:
        return base64.b64encode(self.master.wrap(secret.encode(), secret_context(peer))).decode()

    async def _admit(self, rec: SitePeerRecord) -> int:
        """Store the peer and queue this box's whole state for it, in one commit."""
        if rec.name in self.peers:
            self._forget(rec.name)
        # changes committed from now on are queued for it too (a change the state transfer also
        # carries arrives twice with one stamp: the second is ignored)
        self.log.peers = tuple(sorted({*self.peers, rec.name}))
        async with self.store.txn() as t:
            t.batch.put(sitekeys.peer(rec.name), rec)
            for k, _ in self.store.db.scan(sitekeys.queue_prefix(rec.name)):
                t.batch.delete(k)  # a re-join sends everything again
            queued = self.log.queue_state(t.batch, rec.name)
        self._install(rec)
        return queued

    # --- leaving --------------------------------------------------------------------------------------

    async def remove(self, name: str) -> dict[str, Any]:
        """Stop replicating with peer `name` (its queue is dropped) and tell it, so it stops too;
        a peer that cannot be reached is removed here all the same (`told` is False: run
        `site remove` there)."""
        async with self._lock:
            st = self.peers.get(name)
            if st is None:
                raise SiteError(f"no site peer named {name!r} (stowage site list)")
            told, why = True, ""
            try:
                with trio.fail_after(LEAVE_TIMEOUT):
                    await st.client.acall("leave", {"origin": self.name})
            except (SiteError, trio.TooSlowError) as exc:
                told, why = False, str(exc) or "no answer"
                log.warning("site: %s was not told it left the site: %s", name, why)
            out = await self._drop(name)
        return dict(out, told=told, error=why)

    async def receive_leave(self, origin: str) -> dict[str, Any]:
        """A peer left the site (authorized by the caller: stowage:SiteReplicate)."""
        async with self._lock:
            if origin not in self.peers:
                raise SiteError(f"{origin!r} is not a peer of this box's site")
            await self._drop(origin)
        log.info("site: %s left the site", origin)
        return {"name": self.name}

    async def _drop(self, name: str) -> dict[str, Any]:
        self._forget(name)
        dropped = 0
        async with self.store.txn() as t:
            t.batch.delete(sitekeys.peer(name))
            for k, _ in self.store.db.scan(sitekeys.queue_prefix(name)):
                t.batch.delete(k)
                dropped += 1
        return {"name": name, "dropped": dropped}

    def _forget(self, name: str) -> None:
        scope = self._senders.pop(name, None)
        if scope is not None:
            scope.cancel()
        self.peers.pop(name, None)
        self._wakes.pop(name, None)
        self.log.peers = tuple(sorted(self.peers))
        if self.replication is not None:
            self.replication.detach(TARGET_PREFIX + name)

    # --- sending ----------------------------------------------------------------------------------------

    def _scan(self, name: str) -> list[tuple[bytes, SiteChange]]:
        prefix = sitekeys.queue_prefix(name)
        out = []
        with self.store.db.iterator(start=prefix, stop=keys.prefix_successor(prefix)) as it:
            for k, raw in it:
                out.append((k, SiteChange.decode(raw)))
                if len(out) >= BATCH:
                    break
        return out

    async def _sender(self, name: str, scope: trio.CancelScope) -> None:
        with scope:
            delay = FIRST_RETRY
            while True:
                st = self.peers[name]
                wake = self._wakes[name] = trio.Event()
                entries = await trio.to_thread.run_sync(self._scan, name)
                if not entries:
                    # the hook wakes this before its commit reaches LevelDB: a scan in between
                    # sees nothing, so an idle sender looks again now and then
                    with trio.move_on_after(IDLE_RESCAN):
                        await wake.wait()
                    continue
                await self.store.db.durable(self.store.db.written)  # only durable changes leave
                try:
                    answer = await st.client.acall("changes", {"origin": self.name,
                                                               "changes": [change_json(c) for _, c in entries]})
                except SiteError as exc:
                    st.last_error = str(exc)
                    if not st.retrying_since_ns:
                        st.retrying_since_ns = time.time_ns()
                        log.warning("site peer %s: %s; retrying", name, exc)
                    await trio.sleep(delay if exc.transient else RETRY_MAX)
                    delay = min(delay * 2, RETRY_MAX)
                    continue
                delay = FIRST_RETRY
                if st.retrying_since_ns:
                    st.retrying_since_ns = 0
                    log.info("site peer %s: replicating again", name)
                async with self.store.txn() as t:
                    for k, _ in entries:
                        t.batch.delete(k)
                st.sent += len(entries)
                st.last_sent_ns = time.time_ns()
                c = answer.get("conflicts")
                st.conflicts += c if isinstance(c, int) else 0

    # --- receiving --------------------------------------------------------------------------------------

    async def receive_changes(self, origin: str, changes: list[SiteChange]) -> dict[str, Any]:
        """Apply a peer's changes in their order, in one durable commit, before answering."""
        peer = self.peers.get(origin)
        if peer is None:
            raise SiteError(f"{origin!r} is not a peer of this box's site")
        for ch in changes:
            try:
                self.clock.observe(ch.hlc)
            except ClockSkew as exc:
                raise BadDocument(f"change from {ch.origin}: {exc}") from None
        results: list[Applied] = []
        async with self.store.txn() as t:
            for ch in changes:
                try:
                    r = apply_change(t.batch, ch, peer_root=peer.rec.root_canonical_id,
                                     local_root=self.root_canonical_id)
                except ValueError as exc:
                    raise BadDocument(str(exc)) from None
                results.append(r)
                if r.conflict is not None:
                    t.batch.put(sitekeys.conflict(self.clock.now()), r.conflict)
        conflicts = [r.conflict for r in results if r.conflict is not None]
        for c in conflicts:
            log.warning("site conflict on %s: %s@%s and %s@%s, %s kept (%s)", c.key, c.local_origin,
                        describe(c.local_hlc), c.remote_origin, describe(c.remote_hlc), c.winner or "this box's",
                        c.reason)
        if conflicts:
            await self._trim_conflicts()
        applied = [base64.b64decode(ch.key) for ch, r in zip(changes, results, strict=True) if r.applied]
        if any(k[:1] in sitekeys.IDENTITY for k in applied):
            await self.refresh_identities()
        self.received += len(applied)
        self.conflicts_seen += len(conflicts)
        return {"applied": len(applied), "conflicts": len(conflicts)}

    async def _trim_conflicts(self) -> None:
        found = list(self.store.db.scan(sitekeys.CONFLICT))
        if len(found) > KEEP_CONFLICTS:
            async with self.store.txn() as t:
                for k, _ in found[:-KEEP_CONFLICTS]:
                    t.batch.delete(k)

    # --- status -----------------------------------------------------------------------------------------

    def listing(self) -> list[dict[str, Any]]:
        return [{"name": st.rec.name, "url": st.rec.url, "access_key": st.rec.access_key,
                 "tls_verify": st.rec.tls_verify, "added_ns": st.rec.added_ns} for _, st in sorted(self.peers.items())]

    def _backlog(self, name: str) -> tuple[int, int]:
        """(changes queued for the peer, when the oldest was queued)."""
        prefix = sitekeys.queue_prefix(name)
        n, oldest = 0, 0
        with self.store.db.iterator(start=prefix, stop=keys.prefix_successor(prefix)) as it:
            for _, raw in it:
                if not n:
                    oldest = SiteChange.decode(raw).queued_ns
                n += 1
        return n, oldest

    def problems(self) -> list[dict[str, str]]:
        """The notification and replication rules (replicated from a peer, or made here) that
        name a target this box does not have: targets are per box, so such a rule delivers or
        replicates nothing from this box until a target of that name is added here."""
        replication = set(self.replication.targets) if self.replication is not None else set()
        notify = set(self.notify_targets())
        out: list[dict[str, str]] = []
        view = Txn(self.store)
        for _, raw in self.store.db.scan(events_keys.CONFIGS):
            rec = live_config(view, EventConfigRecord.decode(raw).bucket, raw)
            if rec is None:
                continue
            rules = [("replication", r, replication) for r in (rec.replication or {}).get("rules", [])]
            rules += [("notification", n, notify) for n in rec.notifications]
            out.extend({"bucket": rec.bucket, "kind": kind, "rule": str(r.get("id", "")),
                        "target": str(r.get("target", ""))} for kind, r, have in rules if r.get("target") not in have)
        return out

    def status(self) -> dict[str, Any]:
        conflicts = [SiteConflict.decode(raw) for _, raw in self.store.db.scan(sitekeys.CONFLICT)]
        return {"name": self.name, "hlc": describe(self.clock.now()), "received": self.received,
                "conflicts_since_start": self.conflicts_seen, "missing_targets": self.problems(),
                "peers": [st.to_json(*self._backlog(n)) for n, st in sorted(self.peers.items())],
                "conflicts": [{"key": c.key, "winner": c.winner, "reason": c.reason, "at_ns": c.at_ns,
                               "local": {"site": c.local_origin, "hlc": describe(c.local_hlc)},
                               "remote": {"site": c.remote_origin, "hlc": describe(c.remote_hlc)}}
                              for c in conflicts[-KEEP_CONFLICTS:]]}


async def rewrap_peers(store: ObjectStore, master: SecretWrapper) -> int:
    """Re-wrap the peers' keys not wrapped by the master key's current key (`stowage kms
    rotate-master`); returns how many were."""
    n = 0
    async with store.txn() as t:
        for k, raw in t.batch.scan(sitekeys.PEER):
            rec = SitePeerRecord.decode(raw)
            blob = base64.b64decode(rec.wrapped)
            if not master.wrapped_by_current(blob):
                secret = master.unwrap(blob, secret_context(rec.name))
                rec.wrapped = base64.b64encode(master.wrap(secret, secret_context(rec.name))).decode()
                t.batch.put(k, rec)
                n += 1
    return n
