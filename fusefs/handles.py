"""Open directory handles: stable readdir offsets while entries change.

Offsets: 0 is ".", 1 is "..", 2+i is the i-th entry this handle has listed. Entries are fetched
a page at a time by key order (seek-based listing), and kept in a bounded window; an offset
behind the window (a seekdir far back) restarts the scan and counts forward. Entries created
or removed while a directory is being read may or may not appear, but none appears twice and
none of the unchanged ones is skipped (POSIX readdir rules).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .inodes import Node
from .tree import Entry, Tree

WINDOW = 4096


@dataclass
class DirHandle:
    node: Node
    entries: list[Entry] = field(default_factory=list)
    base: int = 0  # index of entries[0] among all entries listed
    after: str = ""  # listing marker for the next page
    done: bool = False
    light: bool = True  # the next page is tried from the light listing (Tree.page)

    def entry(self, tree: Tree, index: int) -> Entry | None:
        """The index-th entry of the directory (0-based, without . and ..)."""
        if index < self.base:
            self.entries, self.base, self.after, self.done, self.light = [], 0, "", False, True
        while index >= self.base + len(self.entries):
            if self.done:
                return None
            items, self.after, more, self.light = tree.page(self.node, self.after, self.light)
            self.done = not more
            self.entries.extend(items)
            if len(self.entries) > WINDOW:
                drop = len(self.entries) - WINDOW
                del self.entries[:drop]
                self.base += drop
        return self.entries[index - self.base]
