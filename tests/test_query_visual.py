"""Query by text in the image space (q_visual) and by uploaded image, with a real CLIP model.

No pretrained CLIP can be had here: the tiny random CLIP the tests build goes through the
very code path users' clip-ViT-B-32 takes (sentence-transformers, joint text-image space).
"""

from __future__ import annotations

import io
from pathlib import Path

from fastapi.testclient import TestClient
from PIL import Image

from indexer.context import build_context
from indexer.run import index_catalogue
from lookalike.api.app import create_app
from tests.conftest import make_records, model_settings, write_catalogue
from tests.helpers_models import build_tiny_clip


def test_q_visual_and_image_upload_with_a_clip_model(tmp_path: Path) -> None:
    folder = build_tiny_clip(tmp_path / "tiny-clip")
    settings = model_settings(tmp_path / "data", image_model=str(folder), image_tensor=None)
    ctx = build_context(settings)  # type: ignore[arg-type]
    catalogue = write_catalogue(tmp_path / "c", make_records(12))
    index_catalogue(catalogue, ctx)
    ctx.engine.close()

    with TestClient(create_app(settings)) as client:  # type: ignore[arg-type]
        body = client.get("/search", params={"q_visual": "a red circle", "k": 5}).json()
        assert len(body["hits"]) == 5
        scores = [h["score"] for h in body["hits"]]
        assert scores == sorted(scores, reverse=True)
        # Filters still apply to a visual text query.
        blue = client.get("/search", params={"q_visual": "stripes", "color": "blue"}).json()
        assert blue["hits"] and all(h["color"] == "blue" for h in blue["hits"])

        buffer = io.BytesIO()
        Image.open(tmp_path / "c" / "img" / "p3.jpg").save(buffer, format="PNG")
        upload = client.post(
            "/search/image", files={"file": ("p3.png", buffer.getvalue(), "image/png")}
        )
        assert upload.status_code == 200, upload.text
        assert upload.json()["hits"][0]["id"] == "p3"  # the same picture is its own best match
