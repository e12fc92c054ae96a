"""Blue/green re-indexing for a model change, on both engines.

The catalogue is rebuilt from what the serving engine stores (every product's fields and
image URIs) into a *green* target with the new model while the *blue* one keeps answering;
then readers are switched in one atomic step:

* OpenSearch: a new concrete index, then one ``_aliases`` call moves the products alias.
* Embedded: a new data folder next to the old, then ``data_dir`` (a symlink to the live
  folder) is replaced with ``os.replace`` (atomic rename). The first reindex turns a plain
  ``data_dir`` folder into such a symlink (a brief rename window; see docs/opensearch.md).

Each engine implements the two steps (``Engine.begin_rebuild``, ``Engine.promote``); this module
only drives them and never names an engine.

Writes that reach the blue target during the build are not copied: pause ingest, or re-run
``lookalike index`` after the switch (fingerprints skip what is already current).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from indexer.context import build_context
from indexer.pipeline import BatchReport
from indexer.run import ingest
from lookalike.documents import Product, catalogue_fields
from lookalike.engines import Engine, open_engine
from lookalike.errors import EngineError
from lookalike.progress import Progress
from lookalike.records import ProductRecord
from lookalike.settings import Settings


@dataclass
class ReindexReport:
    """What a blue/green reindex did."""

    engine: str
    model: str
    target: str
    products: int = 0
    skipped: list[str] = field(default_factory=list)  # products with no image URI to re-read
    batches: BatchReport = field(default_factory=BatchReport)
    switched: bool = False
    previous: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return {
            "engine": self.engine,
            "model": self.model,
            "target": self.target,
            "products": self.products,
            "skipped": self.skipped,
            "switched": self.switched,
            "previous": self.previous,
            **self.batches.to_dict(),
        }


def record_of(product: Product) -> ProductRecord | None:
    """The catalogue record a stored product came from (None without image URIs)."""
    uris = [i.uri for i in sorted(product.images, key=lambda i: i.position) if i.uri]
    if not uris:
        return None
    return ProductRecord(**catalogue_fields(product), images=uris)


def stored_records(engine: Engine, size: int, skipped: list[str]) -> Iterator[list[ProductRecord]]:
    """Every stored product as records, in batches (ids without images go to ``skipped``)."""
    ids = engine.all_ids()
    for start in range(0, len(ids), size):
        products = engine.get(ids[start : start + size])
        batch = []
        for pid in ids[start : start + size]:
            record = record_of(products[pid]) if pid in products else None
            if record is None:
                skipped.append(pid)
            else:
                batch.append(record)
        yield batch


def reindex(
    settings: Settings,
    image_model: str,
    image_tensor: str | None = None,
    text_model: str | None = None,
    batch_size: int | None = None,
    keep_old: bool = False,
    progress: Progress | None = None,
    role: str = "cli",
) -> ReindexReport:
    """Rebuild every product with ``image_model`` into a new target, then switch atomically."""
    new_settings = settings.model_copy(
        update={
            "image_model": image_model,
            "image_tensor": image_tensor,
            "text_model": text_model or settings.text_model,
        }
    )
    size = batch_size or settings.batch_size
    blue = open_engine(settings)
    try:
        ctx = build_context(
            new_settings, engine=blue, role=role
        )  # models load before anything is built
        models = {"image": ctx.image_vectorizer.tag}
        if ctx.text_embedder is not None:
            models["text"] = ctx.text_embedder.tag
        green = blue.begin_rebuild(models)
        report = ReindexReport(settings.engine, image_model, green.location)
        ctx.engine = green
        records = (r for batch in stored_records(blue, size, report.skipped) for r in batch)
        progress = progress or Progress()
        progress.stage("re-indexing", blue.count())
        built = ingest(records, ctx, batch_size=size, progress=progress.advance)
        progress.finish()
        report.batches, report.products = built.batches, built.products
        if report.batches.failed or green.count() != report.products:
            raise EngineError(
                "reindex incomplete: the old index keeps serving",
                failed=len(report.batches.failed),
                indexed=green.count(),
                expected=report.products,
            )
        report.previous = blue.promote(green, keep_old=keep_old)
        report.switched = True
        green.close()
        return report
    finally:
        blue.close()
