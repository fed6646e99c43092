"""The daemon's malloc settings: freed 1 MiB blocks are reused without faulting their pages in
again (appliance/malloctune.py). Measured in fresh interpreters: page faults are per process."""

from __future__ import annotations

import subprocess
import sys

# eight 1 MiB blocks made (every page written) and freed together, 60 times, as a read batch
# is; prints the minor page faults that cost
CHILD = """
import resource, sys
from appliance.malloctune import tune_malloc
if sys.argv[1] == "tuned":
    assert tune_malloc()
src = memoryview(bytes(range(256)) * 4096)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(60):
    blocks = [bytes(src) for _ in range(8)]
    del blocks
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _faults(mode: str) -> int:
    out = subprocess.run([sys.executable, "-c", CHILD, mode], capture_output=True, text=True, check=True)
    return int(out.stdout)


def test_freed_blocks_are_reused_without_page_faults() -> None:
    default, tuned = _faults("default"), _faults("tuned")
    pages = 60 * 8 * 256  # what faulting every block in again would cost
    assert default > pages // 2, f"glibc's defaults fault the blocks in again: {default} faults"
    assert tuned < pages // 20, f"{tuned} faults with the settings (default {default})"
