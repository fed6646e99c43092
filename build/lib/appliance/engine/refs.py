"""Arithmetic on segment ref lists (an object's bytes are its refs' ranges, concatenated).

One home for it: reads (storecore.read_refs), part copies (multipart) and the mount's patch
commits (patch) all slice and join ref lists the same way.
"""

from __future__ import annotations

from .records import SegmentRef


def slice_refs(refs: list[SegmentRef], start: int, end: int) -> list[SegmentRef]:
    """The segment ranges covering bytes [start, end) of an object made of `refs`."""
    out: list[SegmentRef] = []
    pos = 0
    for r in refs:
        lo, hi = max(start, pos), min(end, pos + r.length)
        if lo < hi:
            out.append(SegmentRef(r.segment_id, r.offset + lo - pos, hi - lo))
        pos += r.length
        if pos >= end:
            break
    return out


def merge_refs(refs: list[SegmentRef]) -> list[SegmentRef]:
    """Join neighbours that are contiguous ranges of one segment."""
    out: list[SegmentRef] = []
    for r in refs:
        if out and out[-1].segment_id == r.segment_id and out[-1].offset + out[-1].length == r.offset:
            out[-1] = SegmentRef(r.segment_id, out[-1].offset, out[-1].length + r.length)
        else:
            out.append(r)
    return out
