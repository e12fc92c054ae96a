"""HNSW graphs on disk, next to the database: built once, memory-mapped by every process.

A graph covers the rows alive at one change sequence number ``seq``. Under
``<data_dir>/ann/`` it is ``<stem>.faiss`` (faiss.write_index), ``<stem>.ords.npy`` (the
SQLite rowid of each label, so any process maps labels to its own catalogue rows), the
matrix it was built from (``.vectors.npy`` float32, capacity rows, ``.dims.npy`` and
``.rows.npy``: the rowid of each catalogue row it holds) and ``<stem>.json``, the sidecar
naming what the graph is (space, source space, model tag, projection tag, dim, storage,
M, seq, row counts, file sizes); ``<stem>`` is ``<space>.<hash>.<seq>-<token>``. Each
file is written under a temporary name, fsynced and renamed; the sidecar goes last, so a
graph without a sidecar (a crashed writer) is never read. A reader takes the newest
sidecar whose identity matches the space it serves and whose files check out (sizes, row
counts, faiss header); anything else is skipped with a warning, and the space reads
SQLite and builds its own graph as before.

The graph is opened with ``IO_FLAG_MMAP_IFC``: faiss maps the codes and the neighbour lists
from the file instead of copying them; the matrix with ``mmap_mode="c"``. Processes on one
data directory share one copy of both in the page cache; both are brought in ahead of
queries in the background (:mod:`lookalike.engines.embedded.prefault`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import time
import uuid
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from lookalike.engines.embedded.ann import AnnIndex
from lookalike.engines.embedded.prefault import prefault, read_ahead

ANN_DIR = "ann"
FORMAT = 1
STALE_TMP_S = 6 * 3600  # a temporary file this old belongs to no live writer
# A faiss with IO_FLAG_MMAP_IFC (1.15 here) maps codes and links in place; an older one
# (pyproject allows 1.8) reads the graph into RAM: no rebuild still, but no sharing.
READ_FLAGS = getattr(faiss, "IO_FLAG_MMAP_IFC", 0) | faiss.IO_FLAG_READ_ONLY
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
        fields = asdict(self)
        del fields["dim"]  # one file series per space and model, as a padded space grows
        ident = json.dumps(fields, sort_keys=True).encode()
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


@dataclass
class SavedVectors:
    """The float32 matrix a graph was built from, to be mapped instead of read from SQLite."""

    matrix: np.ndarray  # [capacity, dim]: rows past ``len(row_ords)`` are zero (a sparse file)
    dims: np.ndarray  # [capacity] int32, 0 where a row has no vector
    row_ords: np.ndarray  # SQLite rowid of each catalogue row the matrix holds


def _write_matrix(path: Path, v: SavedVectors) -> None:
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=v.matrix.shape)
    n = len(v.row_ords)
    for start in range(0, n, 65_536):  # rows past n stay holes in the file
        out[start : min(n, start + 65_536)] = v.matrix[start : min(n, start + 65_536)]
    out.flush()
    del out


class GraphFiles:
    """The ``ann/`` folder of one data directory."""

    SUFFIXES = (".faiss", ".ords.npy", ".vectors.npy", ".dims.npy", ".rows.npy")

    def __init__(self, data_dir: Path) -> None:
        self.folder = Path(data_dir) / ANN_DIR

    def _path(self, slug: str, stem: str, suffix: str) -> Path:
        return self.folder / f"{slug}.{stem}{suffix}"

    def save(
        self,
        key: GraphKey,
        seq: int,
        index: AnnIndex,
        ords: np.ndarray,
        vectors: SavedVectors | None = None,
    ) -> dict[str, Any]:
        """Write a graph covering ``seq`` (data files, then the sidecar); prune older ones.
        Returns the sidecar."""
        self.folder.mkdir(parents=True, exist_ok=True)
        # ``<seq>-<token>``: two processes saving the same seq never mix their files
        stem = f"{int(seq)}-{uuid.uuid4().hex[:8]}"
        path = partial(self._path, key.slug, stem)
        graph, labels = path(".faiss"), path(".ords.npy")
        _write_atomic(graph, lambda p: faiss.write_index(index.index, str(p)))
        _write_atomic(labels, lambda p: _save_array(p, np.asarray(ords, dtype=np.int64)))
        sizes = {"graph_bytes": graph.stat().st_size, "labels_bytes": labels.stat().st_size}
        extra: dict[str, Any] = {}
        if vectors is not None:
            _write_atomic(path(".vectors.npy"), lambda p: _write_matrix(p, vectors))
            _write_atomic(path(".dims.npy"), lambda p: _save_array(p, vectors.dims))
            _write_atomic(path(".rows.npy"), lambda p: _save_array(p, vectors.row_ords))
            extra = {"matrix_rows": len(vectors.row_ords), "capacity": len(vectors.dims)}
            for suffix in (".vectors.npy", ".dims.npy", ".rows.npy"):
                sizes[suffix[1:-4] + "_bytes"] = path(suffix).stat().st_size
        meta = {
            **asdict(key),
            "format": FORMAT,
            "seq": int(seq),
            "stem": stem,
            "rows": len(ords),
            **sizes,
            **extra,
        }
        _write_atomic(path(".json"), lambda p: p.write_text(json.dumps(meta, sort_keys=True)))
        _fsync_dir(self.folder)
        self.prune(key, keep=seq)
        return meta

    def _sidecars(self, prefix: str) -> list[tuple[int, str, str, Path]]:
        """``(seq, stem, slug, sidecar)`` of graphs whose slug starts with ``prefix``, newest
        first."""
        found = []
        with contextlib.suppress(FileNotFoundError):
            for path in self.folder.glob(f"{prefix}*.json"):
                slug, _, stem = path.name[: -len(".json")].rpartition(".")
                seq = stem.partition("-")[0]
                if seq.isdigit() and not path.name.startswith("."):
                    found.append((int(seq), stem, slug, path))
        return sorted(found, reverse=True)

    def prune(self, key: GraphKey, keep: int) -> None:
        """Delete the space's graphs older than ``keep``, whatever model or projection they
        were for (every process follows the same catalogue to the same ones). The sidecar
        goes first, so a graph is never half-visible; a process that has one mapped keeps
        reading it: unlinking does not unmap."""
        space = key.slug.rpartition(".")[0]
        old = time.time() - STALE_TMP_S
        for tmp in self.folder.glob(f".{space}.*.tmp"):  # left by a writer that was killed
            with contextlib.suppress(OSError):
                if tmp.stat().st_mtime < old:
                    tmp.unlink()
        for seq, stem, slug, sidecar in self._sidecars(space + "."):
            if seq >= keep or slug.rpartition(".")[0] != space:
                continue
            for path in (sidecar, *(self._path(slug, stem, s) for s in self.SUFFIXES)):
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()

    def candidates(self, key: GraphKey, max_seq: int) -> list[dict[str, Any]]:
        """Sidecars of graphs for ``key`` (any dimension) covering at most ``max_seq``, newest
        first; ones that are not valid or name another identity are skipped."""
        found = []
        want = {**asdict(key), "format": FORMAT}
        del want["dim"]  # a padded space grows: the caller compares the dimension
        for seq, stem, slug, sidecar in self._sidecars(key.slug + "."):
            if seq > max_seq or slug != key.slug:
                continue  # built from a newer state than this snapshot has
            try:
                meta = json.loads(sidecar.read_text())
                if not isinstance(meta, dict) or (meta.get("seq"), meta.get("stem")) != (seq, stem):
                    raise ValueError("sidecar is not a JSON object for this file")
                wrong = [k for k, v in want.items() if meta.get(k) != v]
                if wrong:
                    raise ValueError(f"sidecar does not match this space ({', '.join(wrong)})")
            except (OSError, ValueError) as exc:
                log.warning("ignoring ANN graph %s: %s", sidecar.name, exc)
                continue
            found.append(meta)
        return found

    def _checked(self, key: GraphKey, meta: dict[str, Any], suffix: str) -> Path:
        path = self._path(key.slug, str(meta["stem"]), suffix)
        field = suffix[1:].split(".")[0] if suffix != ".faiss" else "graph"
        field = {"ords": "labels"}.get(field, field) + "_bytes"
        size = path.stat().st_size
        if size != meta[field]:
            raise ValueError(f"{path.name} has {size} bytes, the sidecar says {meta[field]}")
        return path

    def open_graph(self, key: GraphKey, meta: dict[str, Any]) -> LoadedGraph | None:
        """The graph of a sidecar, memory-mapped; None (logged) when it does not check out."""
        try:
            if meta["dim"] != key.dim:
                raise ValueError(f"graph is {meta['dim']}-d, the space {key.dim}-d")
            ords = np.load(self._checked(key, meta, ".ords.npy"), allow_pickle=False)
            graph_path = self._checked(key, meta, ".faiss")
            read_ahead(graph_path)  # faiss maps it: its pages fault in from the page cache
            index = faiss.read_index(str(graph_path), READ_FLAGS)
            if type(index).__name__ != _INDEX_TYPES[key.storage]:
                raise ValueError(f"graph is a {type(index).__name__}, expected {key.storage}")
            if index.ntotal != len(ords) or len(ords) != meta["rows"] or index.d != key.dim:
                raise ValueError("graph, labels and sidecar disagree on rows or dimension")
            if ords.dtype != np.int64 or ords.ndim != 1:
                raise ValueError("labels are not a 1-d int64 array")
        except (OSError, ValueError, RuntimeError, KeyError, TypeError) as exc:
            log.warning("ignoring ANN graph %s.%s: %s", key.slug, meta.get("seq"), exc)
            return None
        return LoadedGraph(index, ords, int(meta["seq"]))

    def open_vectors(self, key: GraphKey, meta: dict[str, Any]) -> SavedVectors | None:
        """The matrix saved with a graph, mapped copy-on-write (``mmap_mode="c"``): pages a
        process never writes stay shared with every other process in the page cache."""
        if "matrix_rows" not in meta:
            return None
        try:
            matrix = np.load(self._checked(key, meta, ".vectors.npy"), mmap_mode="c")
            dims = np.load(self._checked(key, meta, ".dims.npy"), allow_pickle=False)
            row_ords = np.load(self._checked(key, meta, ".rows.npy"), allow_pickle=False)
            cap, n = int(meta["capacity"]), int(meta["matrix_rows"])
            if (
                matrix.dtype != np.float32
                or matrix.shape != (cap, meta["dim"])
                or dims.shape != (cap,)
                or row_ords.shape != (n,)
                or n > cap
            ):
                raise ValueError("matrix, dims and rows disagree with the sidecar")
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("ignoring saved vectors %s.%s: %s", key.slug, meta.get("seq"), exc)
            return None
        prefault(matrix, f"{key.slug}.{meta['seq']} matrix")
        return SavedVectors(matrix.view(np.ndarray), dims.astype(np.int32), row_ords)
