"""`stowage user|key|group|policy ...`: IAM users, their access keys, groups and managed policies.

Through the running daemon's control socket when it is up (so the gateway sees the change at
once); otherwise on the metadata DB through the engine (LevelDB admits one process, so never
both). The commands themselves are appliance/iam/commands.py, shared by both paths. Every
command takes --json; a new secret key is printed once and never stored in plain text.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TextIO

import click

from appliance.auditing import offline_identity_change
from appliance.config import Config
from appliance.engine import offline
from appliance.iam.admin import load_master_key

from .common import appliance_options, daemon_or_offline, run_guarded

json_option = click.option("--json", "as_json", is_flag=True, help="machine-readable output")


def _run(cfg: Config, op: str, args: dict[str, Any]) -> Any:
    return daemon_or_offline(cfg, op, args, lambda: offline.identity_session(
        cfg.meta_path, lambda view: offline_identity_change(view, load_master_key(cfg.master_key_path, view), op,
                                                            args)))


def _do(cfg: Config, op: str, args: dict[str, Any], as_json: bool, render: Callable[[Any], None]) -> None:
    result = run_guarded(lambda: _run(cfg, op, args))
    if as_json:
        click.echo(json.dumps(result, indent=2))
    else:
        render(result)


def _show_secret(r: dict[str, Any]) -> None:
    click.echo(f"user:       {r['user']}")
    if "access_key" in r:
        click.echo(f"access key: {r['access_key']}")
        click.echo(f"secret key: {r['secret_key']}")
        click.echo("(the secret is shown only now; store it safely)", err=True)


def _names(items: list[str]) -> str:
    return ", ".join(items) or "-"


# --- users -------------------------------------------------------------------------------------


@click.group("user")
def user() -> None:
    """Manage IAM users (S3 identities besides the root key)."""


@user.command("add")
@appliance_options
@click.argument("name")
@click.option("--path", default="/", show_default=True, help="IAM path, e.g. /staff/")
@click.option("--policy", "policies", multiple=True, help="attach this managed policy (repeatable)")
@click.option("--no-key", is_flag=True, help="create no access key")
@json_option
def user_add(cfg: Config, name: str, path: str, policies: tuple[str, ...], no_key: bool, as_json: bool) -> None:
    """Create a user, with a first access key unless --no-key."""
    _do(cfg, "user.add", {"name": name, "path": path, "policies": list(policies), "no_key": no_key}, as_json,
        _show_secret)


def _render_users(r: list[dict[str, Any]]) -> None:
    if not r:
        click.echo("no users (the root key from the config is always valid)")
    for u in r:
        keys = _names([k["access_key"] + ("" if k["active"] else " (revoked)") for k in u["keys"]])
        state = " (disabled)" if u["disabled"] else ""
        click.echo(f"{u['user']:<24}{state} keys: {keys}; policies: {_names(u['policies'] + u['inline_policies'])}; "
                   f"groups: {_names(u['groups'])}")


@user.command("list")
@appliance_options
@json_option
def user_list(cfg: Config, as_json: bool) -> None:
    """List users, their keys, policies and groups."""
    _do(cfg, "user.list", {}, as_json, _render_users)


@user.command("show")
@appliance_options
@click.argument("name")
@json_option
def user_show(cfg: Config, name: str, as_json: bool) -> None:
    """Show one user."""

    def render(u: dict[str, Any]) -> None:
        click.echo(f"user:      {u['user']}{' (disabled)' if u['disabled'] else ''}")
        click.echo(f"arn:       {u['arn']}")
        click.echo(f"user id:   {u['user_id']}")
        click.echo(f"keys:      {_names([k['access_key'] + ('' if k['active'] else ' (revoked)') for k in u['keys']])}")
        click.echo(f"policies:  {_names(u['policies'])}")
        click.echo(f"inline:    {_names(u['inline_policies'])}")
        click.echo(f"groups:    {_names(u['groups'])}")

    _do(cfg, "user.show", {"name": name}, as_json, render)


def _user_state_command(verb: str, op: str, doc: str) -> click.Command:
    @appliance_options
    @click.argument("name")
    @json_option
    def command(cfg: Config, name: str, as_json: bool) -> None:
        _do(cfg, op, {"name": name}, as_json, lambda r: click.echo(f"user {r['user']} {verb}"))

    command.__doc__ = doc
    return click.command(op.split(".")[1])(command)


user.add_command(_user_state_command("disabled", "user.disable",
                                     "Disable a user: its keys are refused (AccessDenied) until it is enabled."))
user.add_command(_user_state_command("enabled", "user.enable", "Enable a disabled user again."))


@user.command("remove")
@appliance_options
@click.argument("name")
@json_option
def user_remove(cfg: Config, name: str, as_json: bool) -> None:
    """Remove a user with its keys, policies and group memberships."""
    _do(cfg, "user.remove", {"name": name}, as_json,
        lambda r: click.echo(f"removed user {r['user']} and {len(r['removed_keys'])} key(s)"))


# --- access keys -------------------------------------------------------------------------------


@click.group("key")
def key() -> None:
    """Manage users' access keys."""


def read_document(file: TextIO, param: str) -> str:
    """The text of a JSON document FILE; one usage error (not a traceback) when it is not UTF-8."""
    try:
        return file.read()
    except UnicodeDecodeError as exc:
        raise click.BadParameter(f"{getattr(file, 'name', '-')}: not UTF-8 text (invalid byte at offset {exc.start})",
                                 param_hint=param) from None


def _expiry_ns(value: str) -> int:
    """An ISO 8601 time (with a zone, or UTC when it has none) in Unix ns."""
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not an ISO 8601 time (2027-01-31T12:00:00Z)") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return int(when.timestamp()) * 10**9 + when.microsecond * 1000


def _expiry_text(expires_ns: int) -> str:
    if not expires_ns:
        return "never"
    when = datetime.fromtimestamp(expires_ns / 1e9, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    return when + (" (expired)" if expires_ns <= time.time_ns() else "")


def _key_state(k: dict[str, Any]) -> str:
    state = "active" if k["active"] else "revoked"
    if k["expires_ns"]:
        state += f", expires {_expiry_text(k['expires_ns'])}"
    return state + (", session policy" if k["session_policy"] else "")


@key.command("create")
@appliance_options
@click.argument("user_name", metavar="USER")
@click.option("--policy-file", type=click.File("r", encoding="utf-8"), default=None,
              help="a session policy (JSON): the key may do only what both USER's policies and this allow")
@click.option("--expires", default=None, metavar="ISO8601",
              help="refuse the key after this time (ExpiredToken), e.g. 2027-01-31T12:00:00Z")
@json_option
def key_create(cfg: Config, user_name: str, policy_file: TextIO | None, expires: str | None, as_json: bool) -> None:
    """Create another access key for USER (two at most, as IAM allows)."""
    policy = read_document(policy_file, "--policy-file") if policy_file else ""
    args: dict[str, Any] = {"user": user_name, "policy": policy,
                            "expires_ns": _expiry_ns(expires) if expires else 0}

    def render(r: dict[str, Any]) -> None:
        _show_secret(r)
        if r["expires_ns"]:
            click.echo(f"expires:    {_expiry_text(r['expires_ns'])}")
        if r["session_policy"]:
            click.echo("limited by its session policy (`stowage key show` prints it)")

    _do(cfg, "key.create", args, as_json, render)


@key.command("list")
@appliance_options
@click.argument("user_name", metavar="[USER]", required=False, default="")
@json_option
def key_list(cfg: Config, user_name: str, as_json: bool) -> None:
    """List access keys (of USER, or of every user)."""

    def render(r: list[dict[str, Any]]) -> None:
        for k in r:
            click.echo(f"{k['access_key']:<24} {k['user']:<24} {_key_state(k)}")

    _do(cfg, "key.list", {"user": user_name}, as_json, render)


@key.command("show")
@appliance_options
@click.argument("access_key")
@json_option
def key_show(cfg: Config, access_key: str, as_json: bool) -> None:
    """Show an access key: its user, state, expiry and session policy (never its secret)."""

    def render(k: dict[str, Any]) -> None:
        click.echo(f"access key: {k['access_key']}")
        click.echo(f"user:       {k['user']}")
        click.echo(f"state:      {'active' if k['active'] else 'revoked'}")
        click.echo(f"expires:    {_expiry_text(k['expires_ns'])}")
        click.echo("session policy:" + ("" if k["session_policy"] else " none (the user's policies apply as they are)"))
        if k["session_policy"]:
            click.echo(k["session_policy"])

    _do(cfg, "key.show", {"access_key": access_key}, as_json, render)


def _key_command(name: str, op: str, verb: str, doc: str) -> click.Command:
    @appliance_options
    @click.argument("access_key")
    @json_option
    def command(cfg: Config, access_key: str, as_json: bool) -> None:
        _do(cfg, op, {"access_key": access_key}, as_json,
            lambda r: click.echo(f"{verb} {r['access_key']} (user {r['user']})"))

    command.__doc__ = doc
    return click.command(name)(command)


key.add_command(_key_command("revoke", "key.revoke", "revoked",
                             "Revoke (deactivate) an access key: requests signed with it are refused."))
key.add_command(_key_command("enable", "key.enable", "enabled", "Make a revoked access key active again."))
key.add_command(_key_command("delete", "key.delete", "deleted", "Delete an access key for good."))


# --- groups ------------------------------------------------------------------------------------


@click.group("group")
def group() -> None:
    """Manage groups: their members get the group's policies."""


def _render_group(g: dict[str, Any]) -> None:
    click.echo(f"{g['group']:<24} members: {_names(g['members'])}; "
               f"policies: {_names(g['policies'] + g['inline_policies'])}")


@group.command("add")
@appliance_options
@click.argument("name")
@click.option("--path", default="/", show_default=True, help="IAM path")
@json_option
def group_add(cfg: Config, name: str, path: str, as_json: bool) -> None:
    """Create a group."""
    _do(cfg, "group.add", {"name": name, "path": path}, as_json, lambda g: click.echo(f"created group {g['group']}"))


@group.command("remove")
@appliance_options
@click.argument("name")
@json_option
def group_remove(cfg: Config, name: str, as_json: bool) -> None:
    """Remove a group (its members stay, without the group's policies)."""
    _do(cfg, "group.remove", {"name": name}, as_json, lambda g: click.echo(f"removed group {g['group']}"))


@group.command("list")
@appliance_options
@json_option
def group_list(cfg: Config, as_json: bool) -> None:
    """List groups with their members and policies."""
    def render(r: list[dict[str, Any]]) -> None:
        if not r:
            click.echo("no groups")
        for g in r:
            _render_group(g)

    _do(cfg, "group.list", {}, as_json, render)


@group.command("members")
@appliance_options
@click.argument("name")
@click.option("--add", "add", multiple=True, metavar="USER", help="add USER to the group (repeatable)")
@click.option("--remove", "remove", multiple=True, metavar="USER", help="remove USER from the group (repeatable)")
@json_option
def group_members(cfg: Config, name: str, add: tuple[str, ...], remove: tuple[str, ...], as_json: bool) -> None:
    """List a group's members, after adding and removing the ones given."""
    _do(cfg, "group.members", {"name": name, "add": list(add), "remove": list(remove)}, as_json,
        lambda g: click.echo("\n".join(g["members"]) or "(no members)"))


# --- policies ----------------------------------------------------------------------------------


@click.group("policy")
def policy() -> None:
    """Manage policies: canned ones (readonly, writeonly, readwrite, admin) and JSON documents."""


def _document_args(file: TextIO | None, canned: str | None) -> dict[str, str]:
    if (file is None) == (canned is None):
        raise click.UsageError("give a policy FILE (- for standard input) or --canned NAME")
    return {"canned": canned} if canned is not None else {"document": read_document(file, "FILE") if file else ""}


@policy.command("create")
@appliance_options
@click.argument("name")
@click.argument("file", type=click.File("r", encoding="utf-8"), required=False)
@click.option("--canned", metavar="NAME", help="copy a canned policy's document instead of reading FILE")
@click.option("--description", default="", help="a line about what the policy is for")
@click.option("--path", default="/", show_default=True, help="IAM path")
@json_option
def policy_create(cfg: Config, name: str, file: TextIO | None, canned: str | None, description: str, path: str,
                  as_json: bool) -> None:
    """Create a managed policy from a JSON document FILE (or a canned policy)."""
    args = {"name": name, "description": description, "path": path, **_document_args(file, canned)}
    _do(cfg, "policy.create", args, as_json, lambda p: click.echo(f"created policy {p['policy']} ({p['arn']})"))


@policy.command("update")
@appliance_options
@click.argument("name")
@click.argument("file", type=click.File("r", encoding="utf-8"), required=False)
@click.option("--canned", metavar="NAME", help="use a canned policy's document")
@json_option
def policy_update(cfg: Config, name: str, file: TextIO | None, canned: str | None, as_json: bool) -> None:
    """Give a managed policy a new default version (the oldest of five makes room)."""
    _do(cfg, "policy.update", {"name": name, **_document_args(file, canned)}, as_json,
        lambda p: click.echo(f"policy {p['policy']} is now at {p['default_version']}"))


@policy.command("list")
@appliance_options
@json_option
def policy_list(cfg: Config, as_json: bool) -> None:
    """List the canned and managed policies and what they are attached to."""

    def render(r: list[dict[str, Any]]) -> None:
        for p in r:
            kind = "canned" if p["canned"] else p["default_version"]
            click.echo(f"{p['policy']:<24} {kind:<8} attached to: {_names(p['attached_to'])}")

    _do(cfg, "policy.list", {}, as_json, render)


@policy.command("show")
@appliance_options
@click.argument("name")
@click.option("--version", default="", help="a version id (default: the default version)")
@json_option
def policy_show(cfg: Config, name: str, version: str, as_json: bool) -> None:
    """Show a policy's document."""

    def render(p: dict[str, Any]) -> None:
        click.echo(f"# {p['policy']} {p['version']} ({p['arn']}); attached to: {_names(p['attached_to'])}")
        click.echo(p["document"])

    _do(cfg, "policy.show", {"name": name, "version": version}, as_json, render)


def _attach_command(verb: str) -> click.Command:
    @appliance_options
    @click.argument("name")
    @click.option("--user", "user_name", default="", metavar="USER")
    @click.option("--group", "group_name", default="", metavar="GROUP")
    @json_option
    def command(cfg: Config, name: str, user_name: str, group_name: str, as_json: bool) -> None:
        if bool(user_name) == bool(group_name):
            raise click.UsageError("give --user USER or --group GROUP")
        target = {"user": user_name} if user_name else {"group": group_name}
        _do(cfg, f"policy.{verb}", {"name": name, **target}, as_json,
            lambda r: click.echo(f"{verb}ed {name}: {next(iter(target))} {next(iter(target.values()))} "
                                 f"has {_names(r['policies'])}"))

    command.__doc__ = f"{verb.capitalize()} a policy {'to' if verb == 'attach' else 'from'} a user or a group."
    return click.command(verb)(command)


policy.add_command(_attach_command("attach"))
policy.add_command(_attach_command("detach"))


@policy.command("remove")
@appliance_options
@click.argument("name")
@json_option
def policy_remove(cfg: Config, name: str, as_json: bool) -> None:
    """Remove a managed policy, detaching it from every user and group."""
    _do(cfg, "policy.remove", {"name": name}, as_json,
        lambda r: click.echo(f"removed policy {r['policy']} (detached from {_names(r['detached_from'])})"))


commands = [user, key, group, policy]
