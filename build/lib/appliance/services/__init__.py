"""Long-running workers the daemon starts with `nursery.start` (each reports readiness through
`task_status`): the healer, scrubber, disk monitor, drainer, metadata snapshots (bundled in
healing.Healing, as they share one healer) and the GC. A service holds the policy — when to run,
what to look at, how fast, its passes and its typed progress — and reaches the engine only
through narrow methods (appliance/engine/upkeep.py, repair.py, metasnap.py, gc.py), never
through the metadata DB or shard files. loop.py holds the loop they share.

May import: appliance.engine, appliance.config and diskmgr. Never imports the daemon, the
control socket, the ops, the CLI or the frontends: progress is streamed through a plain
callback (loop.Emit) and the daemon wires everything together.
"""
