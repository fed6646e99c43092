"""Control-socket operations for identities: user.*, key.*, group.* and policy.* (the table of
appliance/iam/commands.py), run through the daemon's IdentityAdmin so the gateway's index follows
every change."""

from __future__ import annotations

from typing import Any

from appliance.control import ControlServer, Emit
from appliance.iam.admin import IdentityAdmin
from appliance.iam.commands import COMMANDS, Command, Env


def register(control: ControlServer, admin: IdentityAdmin) -> None:
    env = Env(admin.master, admin.account_id)
    for op, command in COMMANDS.items():

        async def handler(args: dict[str, Any], emit: Emit, command: Command = command) -> Any:
            if command.writes:
                return await admin.write(lambda view: command.run(view, env, args))
            return await admin.read(lambda view: command.run(view, env, args))

        control.register(op, handler)
