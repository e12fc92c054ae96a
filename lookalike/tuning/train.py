"""Training the tuned head on the engine's stored vectors, judged on a held-out split by id.

Reads every product's stored ``image`` and ``color`` vectors (nothing is re-embedded), takes
the labels the user names (catalogue fields or attributes) as classes, trains
:class:`~lookalike.tuning.head.Head` on the training side of :func:`lookalike.holdout.split`
and registers its towers with the engine as the projections serving ``tuned`` and
``tuned_color``: every product gets tuned vectors, labelled or not, later writes too, and a
re-tune replaces the projections in place. Deterministic under a seed (one
torch generator for the initialisation and the batches, a fixed thread count).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from lookalike import holdout
from lookalike.engines import Engine
from lookalike.errors import InvalidInput
from lookalike.progress import Progress
from lookalike.tuning.head import SERVED, Head, Tower

SOURCES = ("image", "color")  # the stored spaces the head reads (colour when indexed)
THREADS = 2


@dataclass
class TuneOptions:
    labels: tuple[str, ...] = ("category", "color")
    seed: int = 0
    epochs: int = 10
    hidden: int = 256
    dim: int = 128  # the image tower's output (space ``tuned``)
    color_dim: int = 64  # the colour tower's output (space ``tuned_color``)
    color_mix: float = 0.7  # the colour tower's weight against the image tower's 1
    scale: float = 16.0  # inverse temperature of the cosine classifiers
    lr: float = 2e-3
    batch: int = 256
    weight_decay: float = 0.05
    k: int = 10  # the cut-off of the before/after precision
    linear: bool = False  # no ReLU between a tower's layers: one affine map per space


@dataclass
class TuneReport:
    labels: list[str]
    model: str
    tags: dict[str, str]  # the served spaces' projection tags
    weights: dict[str, float]  # the re-ranking weights that score as the head was trained
    seed: int
    epochs: int
    products: int
    train: int
    test: int
    unlabelled: int  # products with none of the labels: tuned all the same
    before: dict[str, float] = field(default_factory=dict)  # P@k per label, raw image vectors
    after: dict[str, float] = field(default_factory=dict)  # P@k per label, tuned vectors
    loss: float = 0.0
    seconds: float = 0.0

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def label_value(product: object, label: str) -> str | None:
    """A top-level field (``category``, ``color``, ``brand``) or an attribute's first value."""
    if label in ("category", "color", "brand"):
        value = getattr(product, label, None)
        return value if isinstance(value, str) and value else None
    values = getattr(product, "attributes", {}).get(label.removeprefix("attributes.")) or [None]
    return values[0]


def encode(values: Sequence[str | None]) -> tuple[np.ndarray, list[str]]:
    """Class codes (``-1``: no value) and the sorted vocabulary."""
    vocab = sorted({v for v in values if v is not None})
    index = {v: i for i, v in enumerate(vocab)}
    return np.array([index[v] if v is not None else -1 for v in values], np.int64), vocab


def precision_at_k(vectors: np.ndarray, codes: np.ndarray, queries: np.ndarray, k: int) -> float:
    """Leave-one-out P@k of the ``queries`` rows against every row, by exact cosine."""
    judged = queries[codes[queries] >= 0]
    if len(judged) == 0:
        return 0.0
    hits = 0
    for start in range(0, len(judged), 512):
        rows = judged[start : start + 512]
        sims = vectors[rows] @ vectors.T
        sims[np.arange(len(rows)), rows] = -np.inf  # never the query itself
        top = np.argpartition(-sims, k, axis=1)[:, :k]
        hits += int((codes[top] == codes[rows][:, None]).sum())
    return hits / (len(judged) * k)


def fit(
    xs: Sequence[np.ndarray],
    codes: list[np.ndarray],
    options: TuneOptions,
    progress: Progress | None = None,
) -> tuple[Head, float]:
    """Train a head on rows of every source space (``xs``) whose label ``codes`` (one array
    per label, -1: none) are known; returns it with the last epoch's mean loss."""
    torch.manual_seed(options.seed)
    generator = torch.Generator().manual_seed(options.seed)
    classes = [int(c.max()) + 1 for c in codes]
    dims = [options.dim, options.color_dim][: len(xs)]
    mix = [1.0, options.color_mix][: len(xs)]
    means = [x.mean(axis=0) for x in xs]
    head = Head(means, mix, options.hidden, dims, classes, options.scale, options.linear)
    opt = torch.optim.AdamW(head.parameters(), lr=options.lr, weight_decay=options.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, options.epochs))
    xt = [torch.as_tensor(x, dtype=torch.float32) for x in xs]
    yt = [torch.as_tensor(c) for c in codes]
    loss_fn = torch.nn.CrossEntropyLoss(ignore_index=-1)
    mean_loss = 0.0
    progress = progress or Progress()
    progress.stage("tuning", options.epochs)
    for _ in range(options.epochs):
        order = torch.randperm(len(xt[0]), generator=generator)
        total, batches = 0.0, 0
        for start in range(0, len(order), options.batch):
            rows = order[start : start + options.batch]
            logits = head.logits(head([x[rows] for x in xt]))
            losses = [loss_fn(lg, y[rows]) for lg, y in zip(logits, yt, strict=True)]
            loss = torch.stack([ls for ls in losses if torch.isfinite(ls)]).sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach())
            batches += 1
        sched.step()
        mean_loss = total / max(1, batches)
        progress.advance()
    progress.finish()
    return head, mean_loss


def _rows(engine: Engine, ids: list[str], space: str, model: str) -> np.ndarray:
    """The stored vectors of ``ids`` in one space (zeros for a product without one)."""
    found = engine.stored_vectors(ids, space, model)
    width = max((len(v) for v in found.values()), default=0)
    out = np.zeros((len(ids), width), np.float32)
    for i, pid in enumerate(ids):
        if pid in found:
            out[i, : len(found[pid])] = found[pid]
    return out


def tune(
    engine: Engine, options: TuneOptions | None = None, progress: Progress | None = None
) -> TuneReport:
    """Train on the stored vectors and labels; register the towers as the ``tuned`` spaces."""
    options = options or TuneOptions()
    if not options.labels:
        raise InvalidInput("name at least one --label to tune on")
    started = time.perf_counter()
    models = engine.space_models()
    if SOURCES[0] not in models:
        raise InvalidInput("no image vectors to tune on: index the catalogue first")
    sources = [s for s in SOURCES if s in models]
    ids = sorted(engine.stored_vectors(engine.all_ids(), SOURCES[0], models[SOURCES[0]]))
    xs = [_rows(engine, ids, space, models[space]) for space in sources]
    products = engine.get(ids)
    codes = [encode([label_value(products[pid], lb) for pid in ids])[0] for lb in options.labels]
    test_side = np.array([holdout.is_test(pid, options.seed) for pid in ids], dtype=bool)
    train_rows, test_rows = np.flatnonzero(~test_side), np.flatnonzero(test_side)
    for label, c in zip(options.labels, codes, strict=True):
        if len(np.unique(c[train_rows][c[train_rows] >= 0])) < 2:
            raise InvalidInput(f"label {label!r} needs at least two values among the products")
    threads = torch.get_num_threads()
    torch.set_num_threads(THREADS)  # the same arithmetic, run after run
    try:
        head, loss = fit(
            [x[train_rows] for x in xs], [c[train_rows] for c in codes], options, progress
        )
    finally:
        torch.set_num_threads(threads)
    info = {
        "labels": list(options.labels),
        "seed": options.seed,
        "loss": loss,
        "linear": options.linear,
    }
    towers: list[Tower] = list(head.towers)  # type: ignore[arg-type]
    projections = [
        tower.projection(space, models[space], {**info, "mix": mix})
        for tower, space, mix in zip(towers, sources, [1.0, options.color_mix], strict=False)
    ]
    tuned = _mixed([p.apply(x) for p, x in zip(projections, xs, strict=True)], options)
    report = TuneReport(
        labels=list(options.labels),
        model=models[SOURCES[0]],
        tags={p.space: p.tag for p in projections},
        weights=served_weights(options, sources),
        seed=options.seed,
        epochs=options.epochs,
        products=len(ids),
        train=len(train_rows),
        test=len(test_rows),
        unlabelled=int(np.all(np.stack(codes) < 0, axis=0).sum()),
        loss=loss,
    )
    for label, c in zip(options.labels, codes, strict=True):
        report.before[label] = precision_at_k(xs[0], c, test_rows, options.k)
        report.after[label] = precision_at_k(tuned, c, test_rows, options.k)
    for projection in projections:  # a re-tune replaces each served space in place
        engine.set_projection(projection)
    report.seconds = time.perf_counter() - started
    return report


def _mixed(parts: list[np.ndarray], options: TuneOptions) -> np.ndarray:
    """The head's unit vector from the served towers' outputs (what the re-ranker blends)."""
    mix = np.array([1.0, options.color_mix][: len(parts)])
    mix = np.sqrt(mix / mix.sum())
    return np.hstack([m * p for m, p in zip(mix, parts, strict=True)])


def served_weights(options: TuneOptions, sources: Sequence[str]) -> dict[str, float]:
    """The re-ranking weights that score as the head was trained: the tuned spaces in the
    ratio of the mix, the raw image and colour signals off."""
    out = {"visual": 0.0, "color": 0.0, SERVED[SOURCES[0]]: 1.0}
    if len(sources) > 1:
        out[SERVED[SOURCES[1]]] = options.color_mix
    return out
