"""What the console needs from the daemon beyond S3 and IAM: the disks' detail and actions, the
durability estimate, the installed version and the metrics' recent history.

The gateway cannot reach the appliance's services (they sit above it in the layering), so the
daemon hands the console an object with these methods (appliance/consoleadmin.py). The console
authorizes each call first (handler.py); the methods only do the work.
"""

from __future__ import annotations

from typing import Any, Protocol

Json = dict[str, Any]


class ApplianceAdmin(Protocol):
    async def disk_detail(self) -> Json:
        """{"disks": {disk_id: {"smart", "shards", "progress"}}, "services": heal/scrub/drain progress}"""

    async def disk_candidates(self) -> Json:
        """{"devices": [{"device", "by_id", "kind", "model", "serial", "size_bytes", "system",
        "blockers", "data", "suggested_role", "suggestion_reason"}], "pools": [...]}: block devices
        not in the appliance, with what `stowage disks add` would refuse (blockers) or want
        --force for (data)."""

    async def disk_action(self, action: str, args: Json, who: str, where: str) -> Json:
        """Run one of the `stowage disks` / `heal` / `scrub` actions as `who` (audited); long ones
        (drain, replace) start and return at once, their progress shows in disk_detail(); "add"
        ({"device", "role", "pool", "force", "confirm"}) formats and attaches before it returns."""

    async def durability(self) -> Json:
        """The `stowage durability --json` document for this box."""

    async def version(self) -> Json:
        """The `stowage version --json` document: version, formats, whether they are current."""

    def history(self) -> Json:
        """Recent samples of the metrics the charts draw: capacity and requests."""
