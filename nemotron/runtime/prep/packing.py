"""Packing SFT samples into fixed-length bins: best-fit decreasing, deterministic.

Samples are taken longest first (ties by index); each goes into the open bin with the least room
that still fits it, else into a new bin (best-fit decreasing: at most 11/9 OPT + 6/9 bins, like
first-fit decreasing, and as fast here with a sorted list of free space). The same lengths always
give the same bins. `efficiency` is the share of bin positions holding sample tokens.
"""

from __future__ import annotations

import bisect
from typing import List, Sequence


def best_fit_decreasing(lengths: Sequence[int], capacity: int) -> List[List[int]]:
    """Bins of sample indices, each bin's lengths summing to at most `capacity`."""
    if capacity < 1:
        raise ValueError(f"bin capacity {capacity} must be positive")
    too_long = [i for i, n in enumerate(lengths) if n > capacity or n < 1]
    if too_long:
        i = too_long[0]
        raise ValueError(f"sample {i} has length {lengths[i]}, outside 1..{capacity}")
    bins: List[List[int]] = []
    free: List[tuple] = []  # (room left, bin index), sorted
    for i in sorted(range(len(lengths)), key=lambda k: (-lengths[k], k)):
        n = lengths[i]
        at = bisect.bisect_left(free, (n, -1))
        if at < len(free):
            room, b = free.pop(at)
        else:
            room, b = capacity, len(bins)
            bins.append([])
        bins[b].append(i)
        if room - n > 0:
            bisect.insort(free, (room - n, b))
    return bins


def efficiency(lengths: Sequence[int], bins: Sequence[Sequence[int]], capacity: int) -> float:
    """Sample positions over all bin positions (1.0 when no padding is needed)."""
    if not bins:
        return 0.0
    return sum(lengths[i] for b in bins for i in b) / (len(bins) * capacity)
