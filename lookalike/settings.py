"""One typed settings object, read from ``LOOKALIKE_*`` environment variables and an optional file.

Precedence: explicit arguments > environment > the TOML file named by ``LOOKALIKE_CONFIG``
(or ``lookalike.toml`` in the working directory) > defaults. Every field is documented in the
README's settings table, and a test checks that the table and this class agree.
"""

from __future__ import annotations

import os
import tomllib
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, BeforeValidator, Field
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)


class _TomlSource(PydanticBaseSettingsSource):
    """Reads settings from a TOML file (keys without the ``LOOKALIKE_`` prefix)."""

    def __init__(self, settings_cls: type[BaseSettings]) -> None:
        super().__init__(settings_cls)
        path = os.environ.get("LOOKALIKE_CONFIG") or "lookalike.toml"
        self._data: dict[str, Any] = {}
        if Path(path).is_file():
            with open(path, "rb") as fh:
                self._data = tomllib.load(fh)

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self._data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return {k: v for k, v in self._data.items() if k in self.settings_cls.model_fields}


# A rate limit as the `limits` library parses it: "300/minute", "10 per second".
RATE = r"^\d+\s*(/|per)\s*\d*\s*(second|minute|hour|day)s?$"


def split_list(value: str, sep: str = ",") -> list[str]:
    """A setting holding a separated list (``a,b``) as its non-empty items."""
    return [item.strip() for item in value.split(sep) if item.strip()]


def _separated(sep: str) -> BeforeValidator:
    """Read a list setting from its separated string form (environment, arguments) once."""
    return BeforeValidator(lambda v: tuple(split_list(v, sep)) if isinstance(v, str) else v)


# List settings: written as separated strings (``LOOKALIKE_API_KEYS=a,b``) or TOML lists,
# parsed here once; ``NoDecode``: the environment value is not read as JSON first.
CommaList = Annotated[tuple[str, ...], NoDecode, _separated(",")]
PathList = Annotated[tuple[Path, ...], NoDecode, _separated(os.pathsep)]


class Settings(BaseSettings):
    """Everything configurable in Lookalike."""

    model_config = SettingsConfigDict(env_prefix="LOOKALIKE_", extra="ignore")

    data_dir: Path = Field(
        Path("lookalike-data"), description="Where the embedded engine keeps its files."
    )
    engine: Literal["embedded", "opensearch"] = Field(
        "embedded", description="Search engine backend: `embedded` or `opensearch`."
    )
    image_model: str = Field(
        "clip-ViT-B-32",
        description="Image model: a sentence-transformers hub name, a local model folder, "
        "or a `.tflite` file.",
    )
    image_tensor: str | None = Field(
        None,
        description="For `.tflite` models: (part of) the name of the intermediate tensor "
        "to use as the embedding, e.g. `GlobalPool`.",
    )
    text_model: str = Field(
        "all-MiniLM-L6-v2",
        description="Text embedding model (sentence-transformers name or folder); `none` "
        "disables text vectors.",
    )
    color_vectors: bool = Field(
        True,
        description="Store a colour/style vector (background-free HSV histogram) per image "
        "and product beside the image model's, the `color` signal; off: no `color` space.",
    )
    w_color: float = Field(
        0.15,
        ge=0,
        description="Default weight of the `color` signal when a query gives none "
        "(chosen with `lookalike eval`, BENCHMARKS.md).",
    )
    text_backend: Literal["torch", "onnx"] = Field(
        "torch",
        description="How the text model runs: `torch` (sentence-transformers) or `onnx` (an "
        "int8 ONNX export of the same local weights, made once and cached under "
        "`<data_dir>/models`; the `onnx` extra; faster ingest on small machines).",
    )
    redis_url: str = Field(
        "redis://127.0.0.1:6379/0",
        validation_alias=AliasChoices("REDIS_URL", "LOOKALIKE_REDIS_URL"),
        description="Celery broker and result backend (`REDIS_URL`).",
    )
    batch_size: int = Field(64, ge=1, le=10_000, description="Products per indexing batch/job.")
    ingest_workers: int = Field(
        default_factory=lambda: os.cpu_count() or 1,
        ge=1,
        le=256,
        description="Processes that decode and embed images during `lookalike index` "
        "(in-process runs); 1 runs everything in one process.",
    )
    image_timeout: float = Field(10.0, gt=0, description="Seconds allowed to fetch one image URL.")
    image_max_bytes: int = Field(
        20_000_000, gt=0, description="Largest image file or download accepted, in bytes."
    )
    image_allowed_hosts: CommaList = Field(
        (),
        description="Comma-separated image hosts (names, IPs or CIDRs) trusted although they "
        "resolve to private or loopback addresses; all others must be public.",
    )
    image_roots: PathList = Field(
        (),
        description="Folders (separated by `:`) local image paths must resolve inside; empty: "
        "any regular file the catalogue names.",
    )
    visibility_timeout: int = Field(
        7200,
        ge=1,
        description="Seconds before Redis redelivers an unacknowledged indexing job "
        "(longer than any job).",
    )
    candidates: int = Field(
        1000, ge=1, le=10_000, description="Keyword candidate window re-ranked by anchors."
    )
    default_k: int = Field(10, ge=1, le=1000, description="Results returned when k is not given.")
    max_k: int = Field(200, ge=1, le=10_000, description="Largest k a request may ask for.")
    host: str = Field("127.0.0.1", description="`lookalike serve` bind address.")
    port: int = Field(8000, description="`lookalike serve` port.")
    ann_threshold: int = Field(
        50_000, ge=0, description="Catalogue size above which the embedded engine uses HNSW."
    )
    opensearch_url: str = Field(
        "http://127.0.0.1:9200",
        validation_alias=AliasChoices("OPENSEARCH_URL", "LOOKALIKE_OPENSEARCH_URL"),
        description="OpenSearch cluster for `LOOKALIKE_ENGINE=opensearch` (`OPENSEARCH_URL`).",
    )
    opensearch_prefix: str = Field(
        "lookalike", description="Prefix of the OpenSearch index, alias and cache names."
    )
    opensearch_timeout: float = Field(
        30.0,
        gt=0,
        description="Seconds the OpenSearch client waits for one answer; a node that does not "
        "answer in time fails the request (the API answers 503).",
    )
    opensearch_pushdown: bool = Field(
        True,
        description="Re-rank inside the OpenSearch cluster (a `rescore` script) when the "
        "request allows it; off: re-score in Python over the window's vectors.",
    )
    env: str = Field(
        "development",
        pattern=r"^[a-z]+$",
        description="`development` or anything else (`production`): outside development the "
        "API refuses to start without strong write keys.",
    )
    api_keys: CommaList = Field(
        (), description="Comma-separated API keys allowed to write (ingest, delete, admin)."
    )
    read_keys: CommaList = Field((), description="Comma-separated API keys allowed only to read.")
    read_requires_key: bool = Field(
        False, description="Read endpoints need a read or write key too."
    )
    allow_anonymous_writes: bool = Field(
        False, description="Development only: write endpoints work without a key."
    )
    max_body_bytes: int = Field(
        25_000_000,
        ge=1024,
        description="Largest request body the API reads (counted as it streams in), in bytes.",
    )
    ingest_mode: Literal["queue", "inline"] = Field(
        "queue",
        description="`POST /products`: `queue` (Celery jobs on Redis) or `inline` (indexed "
        "in the API process, no broker).",
    )
    # Shopper sessions (lookalike/sessions): events in Redis, anchors implied by them.
    session_ttl: int = Field(
        86_400, ge=60, le=30 * 86_400, description="Seconds a session is kept after its last event."
    )
    session_max_events: int = Field(
        200, ge=1, le=10_000, description="Events kept per session (the oldest are dropped)."
    )
    session_max_batch: int = Field(
        50, ge=1, le=1000, description="Events one `POST /sessions/{id}/events` may carry."
    )
    session_rate: str = Field(
        "300/minute",
        pattern=RATE,
        description="Events one session may post per window (`N/second|minute|hour|day`).",
    )
    session_client_rate: str = Field(
        "3000/minute",
        pattern=RATE,
        description="Events one client address may post per window, over all its sessions.",
    )
    session_half_life: float = Field(
        1800.0, gt=0, description="Seconds after which an event counts half as much."
    )
    log_format: Literal["text", "json"] = Field(
        "text",
        description="`lookalike serve` and `lookalike worker` logs: `text` lines or `json` "
        "(one object per line, with the request id).",
    )

    def text_backend_options(self) -> dict[str, Any]:
        """Keywords for ``create_text_embedder``: the backend and, for ONNX, its graph cache."""
        if self.text_backend == "onnx":
            return {"backend": "onnx", "cache_dir": str(self.data_dir / "models")}
        return {"backend": "torch"}

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _TomlSource(settings_cls))


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings (the API injects this with ``Depends``)."""
    return Settings()
