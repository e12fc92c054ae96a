"""Merchandiser endpoints: /clusters, /map, /gaps (reads) and their write-backs (write keys).

k-means and t-SNE over thousands of products take seconds, so the last few results are kept
in memory per app, keyed by the parameters and a hash of the selected ids and their vectors:
any change to the catalogue's vectors gives a new key (titles and images are read fresh).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from lookalike.analysis import clusters as clustering
from lookalike.analysis import gapfill, visualmap
from lookalike.analysis.population import visual_population
from lookalike.api.deps import EngineDep, FiltersDep
from lookalike.api.imagelinks import link_clusters
from lookalike.api.security import WRITE_RESPONSES, WriteAccess

router = APIRouter(tags=["merchandising"])
T = TypeVar("T")
CACHE_ENTRIES = 8

KQuery = Annotated[int, Query(ge=2, le=clustering.MAX_K, description="Number of clusters.")]
LimitQuery = Annotated[
    int | None, Query(ge=1, le=100_000, description="At most this many products (by id).")
]
FieldText = Annotated[str, Field(min_length=1, max_length=64)]
ValueText = Annotated[str, Field(min_length=1, max_length=200)]


class ResultCache:
    """The last few computed results, least recently used out first (thread-safe)."""

    def __init__(self, size: int = CACHE_ENTRIES) -> None:
        self.size = size
        self._items: OrderedDict[tuple[Any, ...], Any] = OrderedDict()
        self._lock = threading.Lock()

    def get_or_compute(self, key: tuple[Any, ...], compute: Callable[[], T]) -> T:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]  # type: ignore[no-any-return]
        value = compute()
        with self._lock:
            self._items[key] = value
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return value


def _cache(request: Request) -> ResultCache:
    cache = getattr(request.app.state, "analysis_cache", None)
    if cache is None:
        cache = request.app.state.analysis_cache = ResultCache()
    return cache


class Representative(BaseModel):
    id: str
    title: str | None
    image: str | None = Field(None, description="The stored local path: write keys only.")
    image_url: str | None = Field(None, description="The image: its URL, or the API's route.")


class ClusterOut(BaseModel):
    cluster: int
    size: int
    representative: Representative
    members: list[str]


class ClustersOut(BaseModel):
    k: int
    inertia: float
    clusters: list[ClusterOut]


class PointOut(BaseModel):
    id: str
    x: float
    y: float
    title: str | None
    category: str | None
    color: str | None


class MapOut(BaseModel):
    points: list[PointOut]


class NeighbourOut(BaseModel):
    id: str
    similarity: float
    value: str


class ProposalOut(BaseModel):
    id: str
    value: str
    confidence: float
    neighbours: list[NeighbourOut]


class GapsOut(BaseModel):
    field: str
    proposals: list[ProposalOut]


class GapDecision(BaseModel):
    id: Annotated[str, Field(min_length=1, max_length=512)]
    field: FieldText
    value: ValueText


class AssignIn(BaseModel):
    """Either ``ids``, or a ``cluster`` number of ``GET /clusters?k=..`` (same filters)."""

    field: FieldText
    value: ValueText
    ids: list[Annotated[str, Field(min_length=1, max_length=512)]] | None = Field(
        None, max_length=100_000
    )
    cluster: int | None = Field(None, ge=0)
    k: int = Field(8, ge=2, le=clustering.MAX_K)
    limit: int | None = Field(None, ge=1, le=100_000)


class AssignOut(BaseModel):
    field: str
    value: str
    updated: int
    ids: list[str]


def _clustering(
    request: Request, engine: Any, k: int, filters: Any, limit: int | None
) -> clustering.Clustering:
    pop = visual_population(engine, filters, limit)
    key = ("clusters", k, pop.digest())
    return _cache(request).get_or_compute(key, lambda: clustering.cluster_population(pop, k))


@router.get("/clusters", response_model=ClustersOut)
def get_clusters(
    request: Request,
    engine: EngineDep,
    filters: FiltersDep,
    k: KQuery = 8,
    limit: LimitQuery = None,
) -> Any:
    """k-means over the visual vectors of the catalogue (or the filtered part): each cluster's
    size, representative (the member closest to its centre) and members, closest first."""
    result = _clustering(request, engine, k, filters, limit)
    return link_clusters(clustering.clustering_dict(result, engine), engine, request)


@router.post(
    "/clusters/assign",
    response_model=AssignOut,
    dependencies=[WriteAccess],
    responses=WRITE_RESPONSES,
)
def assign_cluster(body: AssignIn, request: Request, engine: EngineDep, filters: FiltersDep) -> Any:
    """Set ``field`` = ``value`` on the given ids or a cluster's members (marked inferred)."""
    members = clustering.select_members(
        body.ids, body.cluster, lambda: _clustering(request, engine, body.k, filters, body.limit)
    )
    updated = clustering.assign_cluster(engine, members, body.field, body.value)
    return {"field": body.field, "value": body.value, "updated": updated, "ids": members}


@router.get("/map", response_model=MapOut)
def get_map(
    request: Request,
    engine: EngineDep,
    filters: FiltersDep,
    limit: Annotated[int, Query(ge=2, le=20_000, description="At most this many products.")] = 2000,
    method: Annotated[str, Query(description="tsne, or umap when installed.")] = "tsne",
) -> Any:
    """The catalogue's 2-D visual map: each product at (x, y) in [0, 1], with its labels."""
    pop = visual_population(engine, filters, limit)
    key = ("map", method, pop.digest())
    vmap = _cache(request).get_or_compute(key, lambda: visualmap.map_population(pop, method))
    return visualmap.map_points(vmap, engine)


@router.get("/gaps", response_model=GapsOut)
def get_gaps(
    engine: EngineDep,
    filters: FiltersDep,
    field: Annotated[str, Query(min_length=1, max_length=64, description="Field to fill.")],
    limit: Annotated[int, Query(ge=1, le=10_000, description="At most this many.")] = 50,
    min_confidence: Annotated[float, Query(ge=0, le=1, description="Lowest confidence.")] = 0.0,
    neighbours: Annotated[int, Query(ge=1, le=100, description="Neighbours that vote.")] = 10,
) -> Any:
    """Proposed values for products missing ``field``, from their visual neighbours' vote."""
    found = gapfill.propose(
        engine, field, k=neighbours, min_confidence=min_confidence, limit=limit, filters=filters
    )
    return {"field": field, "proposals": [p.to_dict() for p in found]}


@router.post("/gaps/accept", dependencies=[WriteAccess], responses=WRITE_RESPONSES)
def accept_gap(body: GapDecision, engine: EngineDep) -> dict[str, Any]:
    """Write the value back, marked inferred, with the neighbours' vote as provenance."""
    return gapfill.accept(engine, body.id, body.field, body.value)


@router.post("/gaps/reject", dependencies=[WriteAccess], responses=WRITE_RESPONSES)
def reject_gap(body: GapDecision, engine: EngineDep) -> dict[str, Any]:
    """Never propose this value for this product again; the product is unchanged."""
    return gapfill.reject(engine, body.id, body.field, body.value)
