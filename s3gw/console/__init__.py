"""The web console: static pages served by the daemon under /_stowage/v1/console/ on the S3 port.

    handler.py   the HTTP side: the page, login and sessions, and the API the page calls (S3 and
                 IAM requests performed as the logged-in user, presigned links, the appliance pages)
    sessions.py  sessions (in memory, digests only) and their request tokens
    presign.py   presigned GET URLs for downloads and share links
    admin.py     what the console asks the daemon for (disks in detail and their actions, the
                 durability estimate, the version, the charts' history): appliance/consoleadmin.py
    static/      the page: plain HTML, CSS and JavaScript, no build step and no CDN

docs/console.md says what it offers and how it keeps a user to what their policies allow.
"""

from __future__ import annotations

from .handler import Console

__all__ = ["Console"]
