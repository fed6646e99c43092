"""Human rendering of `stowage status` (rich tables)."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from diskmgr.state import DiskState

from .sizes import human_size


def render_status(st: dict[str, Any]) -> None:
    con = Console()
    running = st.get("running", True)
    state = f"up {st.get('uptime_seconds', 0):.0f}s, pid {st.get('pid')}" if running else "[red]not running[/red]"
    con.print(f"[bold]Stowage {st.get('version')}[/bold]  {state}")
    con.print(f"S3 endpoint: {st.get('s3_endpoint') or '-'}    mount: {st.get('mount') or '-'}")
    objects = st.get("objects")
    con.print(f"buckets: {st.get('buckets')}    objects: {objects if objects is not None else '-'}")
    meta = st.get("metadata") or {}
    if meta.get("writable") is False:
        con.print(f"[red]metadata: writes refused[/red] ({meta.get('error')}): restart the daemon once the "
                  "metadata disk is healthy", markup=True)
    if st.get("pools"):
        t = Table(title="pools")
        for col in ("pool", "geometry", "disks", "raw", "usable", "used (raw)", "free (usable)"):
            t.add_column(col)
        for p in st["pools"]:
            g = p["geometry"]
            t.add_row(p["name"], f"{g['k']}+{g['m']}", str(p["disks"]), human_size(p["raw_bytes"]),
                      human_size(p["usable_bytes"]), human_size(p["used_bytes"]), human_size(p["free_usable_bytes"]))
        con.print(t)
    t = Table(title="disks")
    for col in ("disk", "pool", "state", "path", "reasons"):
        t.add_column(col)
    for d in st.get("disks", []):
        color = {DiskState.OK: "green", DiskState.WARNING: "yellow"}.get(d["state"], "red")
        reasons = "; ".join(d.get("reasons") or [])
        t.add_row(d["disk_id"], d["pool"], f"[{color}]{d['state']}[/{color}]", d["path"], reasons)
    con.print(t)
    from .heal import service_lines  # healing services render their own progress lines
    from .lifecycle_view import lifecycle_line

    for name, svc in (st.get("services") or {}).items():
        line = service_lines(name, svc) or lifecycle_line(name, svc)
        con.print(line if line is not None else f"{name}: {svc}", markup=False)
    notes = st.get("notifications")
    if notes and notes.get("targets"):  # per target: backlog, deliveries, events that did not fit
        for name, tst in notes["targets"].items():
            warn = f"  OVERFLOWED {tst['overflowed']}" if tst["overflowed"] else ""
            err = f"  retrying: {tst['last_error']}" if tst["retrying"] else ""
            con.print(f"notify {name}: queued {tst['queued']}, delivered {tst['delivered']}{warn}{err}",
                      markup=False)
    repl = st.get("replication")
    if repl and repl.get("targets"):  # per target: backlog, lag, failures
        for name, rst in repl["targets"].items():
            err = f"  retrying: {rst['last_error']}" if rst["retrying"] else ""
            con.print(f"replication {name}: backlog {rst['queued']} ({human_size(rst['queued_bytes'])}), "
                      f"lag {rst['lag_seconds']}s, completed {rst['completed']}, failed {rst['failed']}{err}",
                      markup=False)
