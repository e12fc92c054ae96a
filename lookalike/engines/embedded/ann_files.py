"""HNSW graphs on disk, next to the database: built once, memory-mapped by every process.

A graph covers the rows alive at one change sequence number ``seq``. It is stored as three
files under ``<data_dir>/ann/``: ``<stem>.faiss`` (faiss.write_index), ``<stem>.ords.npy``
(the SQLite rowid of each label, so any process maps labels to its own catalogue rows) and
``<stem>.json``, the sidecar naming what the graph is (space, source space, model tag,
projection tag, dim, storage, M, seq, row count, file size). Each file is written under a
temporary name, fsynced and renamed; the sidecar goes last, so a graph without a sidecar
(a crashed writer) is never read. A reader takes the newest sidecar whose identity matches
the space it serves and whose files check out (sizes, row count, faiss header); anything
else is skipped with a warning, and the space builds its own graph as before.

Opened with ``IO_FLAG_MMAP_IFC``: faiss maps the codes and the neighbour lists from the
file instead of copying them, so processes on one data directory share one copy of the
graph in the page cache.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from lookalike.engines.embedded.ann import AnnIndex

ANN_DIR = "ann"
FORMAT = 1
READ_FLAGS = faiss.IO_FLAG_MMAP_IFC | faiss.IO_FLAG_READ_ONLY
_faiss: Any = faiss
_INDEX_TYPES = {"sq8": "IndexHNSWSQ", "flat": "IndexHNSWFlat"}
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GraphKey:
    """What a graph was built from: a graph serves a space only when all of this matches."""

    space: str
    source: str  # the stored space the vectors come from
    model: str  # the source vectors' model tag
    projection: str | None  # the tag of the projection the rows are served through
    dim: int
    storage: str
    m: int

    @property
    def slug(self) -> str:
        """A file-name-safe prefix: the space plus a hash of the identity."""
        ident = json.dumps(asdict(self), sort_keys=True).encode()
        safe = re.sub(r"[^A-Za-z0-9_-]", "_", self.space)
        return f"{safe}.{hashlib.sha1(ident).hexdigest()[:12]}"


@dataclass
class LoadedGraph:
    index: Any  # the faiss index, memory-mapped
    ords: np.ndarray  # SQLite rowid of each label
    seq: int


def _write_atomic(path: Path, write: Any) -> None:
    """``write(tmp_path)`` then fsync and rename onto ``path``."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def _save_array(path: Path, array: np.ndarray) -> None:
    with open(path, "wb") as f:  # a file object: np.save would append ".npy" to a name
        np.save(f, array, allow_pickle=False)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class GraphFiles:
    """The ``ann/`` folder of one data directory."""

    def __init__(self, data_dir: Path) -> None:
        self.folder = Path(data_dir) / ANN_DIR

    def _paths(self, key: GraphKey, seq: int) -> tuple[Path, Path, Path]:
        stem = self.folder / f"{key.slug}.{seq}"
        return (
            stem.with_name(stem.name + ".faiss"),
            stem.with_name(stem.name + ".ords.npy"),
            stem.with_name(stem.name + ".json"),
        )

    def save(self, key: GraphKey, seq: int, index: AnnIndex, ords: np.ndarray) -> Path:
        """Write a graph covering ``seq`` (graph, labels, then the sidecar); prune older ones."""
        self.folder.mkdir(parents=True, exist_ok=True)
        graph, labels, sidecar = self._paths(key, seq)
        _write_atomic(graph, lambda p: faiss.write_index(index.index, str(p)))
        ords = np.ascontiguousarray(ords, dtype=np.int64)
        _write_atomic(labels, lambda p: _save_array(p, ords))
        meta = {
            **asdict(key),
            "format": FORMAT,
            "seq": int(seq),
            "rows": len(ords),
            "graph_bytes": graph.stat().st_size,
            "labels_bytes": labels.stat().st_size,
        }
        _write_atomic(sidecar, lambda p: p.write_text(json.dumps(meta, sort_keys=True)))
        _fsync_dir(self.folder)
        self.prune(key, keep=seq)
        return graph

    def _sidecars(self, prefix: str) -> list[tuple[int, str, Path]]:
        """``(seq, slug, sidecar)`` of graphs whose slug starts with ``prefix``, newest first."""
        found = []
        with contextlib.suppress(FileNotFoundError):
            for path in self.folder.glob(f"{prefix}*.json"):
                slug, _, seq = path.name[: -len(".json")].rpartition(".")
                if seq.isdigit() and not path.name.startswith("."):
                    found.append((int(seq), slug, path))
        return sorted(found, reverse=True)

    def prune(self, key: GraphKey, keep: int) -> None:
        """Delete the space's graphs older than ``keep``, whatever model or projection they
        were for (every process follows the same catalogue to the same ones). The sidecar
        goes first, so a graph is never half-visible; a process that has one mapped keeps
        reading it: unlinking does not unmap."""
        space = key.slug.rpartition(".")[0]
        for seq, slug, sidecar in self._sidecars(space + "."):
            if seq >= keep or slug.rpartition(".")[0] != space:
                continue
            stem = self.folder / f"{slug}.{seq}"
            for path in (
                sidecar,
                stem.with_name(stem.name + ".faiss"),
                stem.with_name(stem.name + ".ords.npy"),
            ):
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()

    def load(self, key: GraphKey, max_seq: int) -> LoadedGraph | None:
        """The newest usable graph for ``key`` covering at most ``max_seq``, memory-mapped."""
        for seq, slug, sidecar in self._sidecars(key.slug + "."):
            if seq > max_seq or slug != key.slug:
                continue  # built from a newer state than this snapshot has
            try:
                return self._open(key, seq, sidecar)
            except (OSError, ValueError, RuntimeError, KeyError, TypeError) as exc:
                log.warning("ignoring ANN graph %s: %s", sidecar.name, exc)
        return None

    def _open(self, key: GraphKey, seq: int, sidecar: Path) -> LoadedGraph:
        meta = json.loads(sidecar.read_text())
        if not isinstance(meta, dict):
            raise ValueError("sidecar is not a JSON object")
        want = {**asdict(key), "format": FORMAT, "seq": seq}
        wrong = [k for k, v in want.items() if meta.get(k) != v]
        if wrong:
            raise ValueError(f"sidecar does not match this space ({', '.join(wrong)})")
        graph, labels, _ = self._paths(key, seq)
        for path, field in ((graph, "graph_bytes"), (labels, "labels_bytes")):
            size = path.stat().st_size
            if size != meta[field]:
                raise ValueError(f"{path.name} has {size} bytes, the sidecar says {meta[field]}")
        ords = np.load(labels, allow_pickle=False)
        index = faiss.read_index(str(graph), READ_FLAGS)
        if type(index).__name__ != _INDEX_TYPES[key.storage]:
            raise ValueError(f"graph is a {type(index).__name__}, expected {key.storage}")
        if index.ntotal != len(ords) or len(ords) != meta["rows"] or index.d != key.dim:
            raise ValueError("graph, labels and sidecar disagree on rows or dimension")
        if ords.dtype != np.int64 or ords.ndim != 1:
            raise ValueError("labels are not a 1-d int64 array")
        return LoadedGraph(index, ords, seq)
