"""Mapped matrices are populated ahead of queries (fewer page faults on first reads)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from lookalike.engines.embedded.prefault import prefault, read_ahead

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux madvise")


def _mapped_kib(path: Path) -> list[int]:
    """Rss (KiB) of each of this process's mappings of ``path``: the pages in its page tables."""
    sizes, current = [], False
    for line in Path("/proc/self/smaps").read_text().splitlines():
        head = line.split()
        if head and "-" in head[0] and len(head) >= 5:  # a mapping's header line
            current = line.endswith(str(path))
        elif current and head[0] == "Rss:":
            sizes.append(int(head[1]))
    return sizes


def test_a_prefaulted_mapping_has_its_pages_mapped(tmp_path: Path) -> None:
    path = tmp_path / "m.npy"
    data = np.random.default_rng(0).standard_normal((32_768, 128)).astype(np.float32)
    np.save(path, data)  # 16 MiB
    read_ahead(path)  # best effort; must not fail on a regular file
    matrix = np.load(path, mmap_mode="c")
    assert max(_mapped_kib(path)) < 4096  # a fresh mapping: (almost) nothing mapped yet
    thread = prefault(matrix, "test", wait=True)
    assert thread is not None and not thread.is_alive()
    assert max(_mapped_kib(path)) >= 16 * 1024  # every page of the matrix is mapped
    assert np.array_equal(matrix, data)  # populating only reads


def test_nothing_to_prefault_for_an_empty_array(tmp_path: Path) -> None:
    assert prefault(np.zeros((0, 4), dtype=np.float32), "empty") is None
    read_ahead(tmp_path / "missing.faiss")  # a missing file is ignored, not raised
