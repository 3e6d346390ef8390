"""Moving the heap onto huge pages: which mappings are chosen, and a real collapse where the kernel can."""

from __future__ import annotations

import ctypes
import platform
from pathlib import Path

import pytest

from services.runtime.huge_pages import _collapsible_ranges, _mappings, collapse_heap

_MIB = 1 << 20
_HUGE = 2 * _MIB

# Shaped like /proc/self/smaps (fields trimmed): the heap, a file, an anonymous mapping, a stack, a read-only one.
_SMAPS = """\
5649f4400000-5649f4a00000 rw-p 00000000 00:00 0                          [heap]
Size:               6144 kB
Rss:                6144 kB
AnonHugePages:         0 kB
VmFlags: rd wr mr mw me ac
7f0000000000-7f0000400000 rw-p 00000000 08:01 1234                       /usr/lib/libfoo.so
Size:               4096 kB
Rss:                4096 kB
AnonHugePages:         0 kB
7f1000100000-7f1000900000 rw-p 00000000 00:00 0
Size:               8192 kB
Rss:                8000 kB
AnonHugePages:      2048 kB
7ffd00000000-7ffd00800000 rw-p 00000000 00:00 0                          [stack]
Size:               8192 kB
Rss:                8192 kB
AnonHugePages:         0 kB
7f2000000000-7f2000400000 r--p 00000000 00:00 0
Size:               4096 kB
Rss:                4096 kB
AnonHugePages:         0 kB
"""


def test_only_private_writable_anonymous_memory_and_the_heap_are_read() -> None:
    mappings = _mappings(_SMAPS)
    assert [(m.start, m.end, m.resident_bytes, m.huge_bytes) for m in mappings] == [
        (0x5649F4400000, 0x5649F4A00000, 6144 * 1024, 0),
        (0x7F1000100000, 0x7F1000900000, 8000 * 1024, 2048 * 1024),
    ]


def test_ranges_are_aligned_to_huge_pages_within_their_mapping() -> None:
    ranges = _collapsible_ranges(_mappings(_SMAPS), _HUGE)
    # The heap starts on a 4 MiB boundary; the anonymous mapping starts 1 MiB past one and ends 1 MiB past another.
    assert ranges == [(0x5649F4400000, 0x5649F4A00000), (0x7F1000200000, 0x7F1000800000)]
    assert all(start % _HUGE == 0 and end % _HUGE == 0 for start, end in ranges)


def test_sparse_mappings_and_those_already_on_huge_pages_are_left_alone() -> None:
    sparse = _SMAPS.replace("Rss:                8000 kB", "Rss:                1024 kB")
    assert _collapsible_ranges(_mappings(sparse), _HUGE) == [(0x5649F4400000, 0x5649F4A00000)]
    done = _SMAPS.replace("AnonHugePages:      2048 kB", "AnonHugePages:      8000 kB")
    assert _collapsible_ranges(_mappings(done), _HUGE) == [(0x5649F4400000, 0x5649F4A00000)]
    assert _collapsible_ranges(_mappings(_SMAPS), 64 * _MIB) == []  # no whole page fits


def _kernel_may_refuse() -> bool:
    """Kernels before 6.1 have no MADV_COLLAPSE; with huge pages turned off (`never`) it may be refused."""
    enabled = Path("/sys/kernel/mm/transparent_hugepage/enabled")
    release = tuple(int(part) for part in platform.release().split("-")[0].split(".")[:2])
    return release < (6, 1) or not enabled.exists() or "[never]" in enabled.read_text()


def _huge_bytes_at(address: int) -> int:
    mapping = next(m for m in _mappings(Path("/proc/self/smaps").read_text()) if m.start <= address < m.end)
    return mapping.huge_bytes


@pytest.mark.skipif(not Path("/proc/self/smaps").exists(), reason="Linux only")
def test_a_written_buffer_moves_onto_huge_pages_and_keeps_its_content() -> None:
    size = 64 * _MIB
    buffer = bytearray(b"tenderwatch-") * (size // 12)  # written through: resident, on ordinary pages
    address = ctypes.addressof((ctypes.c_char * len(buffer)).from_buffer(buffer))
    before = _huge_bytes_at(address)

    collapse = collapse_heap()

    if collapse.unsupported is not None:
        assert _kernel_may_refuse(), collapse.unsupported
        assert "MADV_COLLAPSE" in collapse.unsupported and collapse.collapsed_bytes == 0
        return
    assert collapse.collapsed_bytes >= size - 2 * _HUGE
    assert _huge_bytes_at(address) >= before + size - 2 * _HUGE  # all but the unaligned ends
    assert buffer == bytearray(b"tenderwatch-") * (size // 12)
