"""Image embeddings from a TFLite model run with the LiteRT runtime (e.g. quantized MobileNets).

The embedding is either the model's regular output or, when ``tensor`` is given, an intermediate
tensor (such as the global-pool layer before the classifier), read with
``experimental_preserve_all_tensors``. Outputs are dequantized, flattened and L2-normalised.
"""

from __future__ import annotations

import hashlib
import threading
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from lookalike.errors import MissingExtra, ModelError
from lookalike.vectorizers.base import ImageVectorizer
from lookalike.vectors import unit_rows


class LiteRTImageVectorizer(ImageVectorizer):
    """A TFLite image model; the interpreter is not thread-safe, so every run holds a lock."""

    def __init__(
        self,
        model_path: str | Path,
        tensor: str | None = None,
        num_threads: int = 1,
        batch_size: int = 32,
    ) -> None:
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError as exc:
            raise MissingExtra("ai-edge-litert", "litert") from exc

        path = Path(model_path)
        try:
            content = path.read_bytes()
        except OSError as exc:
            raise ModelError(f"cannot read model file {path}: {exc}", model=str(path)) from None
        try:
            with warnings.catch_warnings():
                # preserve_all_tensors warns it is "for debugging": it is how we read the layer.
                warnings.simplefilter("ignore", UserWarning)
                self._interpreter = Interpreter(
                    model_content=content,
                    num_threads=num_threads,
                    experimental_preserve_all_tensors=tensor is not None,
                )
            self._interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise ModelError(f"cannot load TFLite model {path}: {exc}", model=str(path)) from None

        self._lock = threading.Lock()
        self._input = self._interpreter.get_input_details()[0]
        shape = [int(v) for v in self._input["shape"]]
        if len(shape) != 4 or shape[3] != 3:
            raise ModelError(f"{path.name}: expected an NHWC RGB input, got shape {shape}")
        self._input_hw = (shape[1], shape[2])
        self._output = self._pick_output(tensor, path.name)

        self.batch_size = batch_size
        self.dim = int(np.prod(self._output["shape"]))
        self.name = path.stem + (f":{tensor}" if tensor else "")
        version = hashlib.sha256(content).hexdigest()[:12]
        if tensor:
            version += "-" + hashlib.sha256(self._output["name"].encode()).hexdigest()[:8]
        self.version = version

    def _pick_output(self, tensor: str | None, model_name: str) -> dict[str, Any]:
        """The regular output, or the largest tensor whose name contains ``tensor``."""
        if tensor is None:
            return dict(self._interpreter.get_output_details()[0])
        matches = [t for t in self._interpreter.get_tensor_details() if tensor in t["name"]]
        if not matches:
            raise ModelError(f"{model_name}: no tensor name contains {tensor!r}", tensor=tensor)
        return dict(max(matches, key=lambda t: int(np.prod(t["shape"]))))

    def _prepare(self, image: Image.Image) -> np.ndarray:
        """Resize to the model's input size and convert to its input dtype."""
        height, width = self._input_hw
        rgb = image if image.mode == "RGB" else image.convert("RGB")
        pixels = np.asarray(rgb.resize((width, height), Image.Resampling.BILINEAR), np.uint8)
        dtype = self._input["dtype"]
        if dtype == np.uint8:
            return pixels[None]  # quantized MobileNets take raw 0..255 pixels
        if dtype == np.int8:
            return (pixels.astype(np.int16) - 128).astype(np.int8)[None]
        if np.issubdtype(dtype, np.floating):
            return (pixels.astype(np.float32) / 127.5 - 1.0).astype(dtype)[None]  # [-1, 1]
        raise ModelError(f"{self.name}: unsupported input dtype {dtype}")

    def embed_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        if not images:
            return np.zeros((0, self.dim), np.float32)
        batches = [self._prepare(img) for img in images]  # outside the lock: resizing is safe
        scale, zero_point = self._output.get("quantization", (0.0, 0))
        rows = np.empty((len(batches), self.dim), np.float32)
        with self._lock:
            for i, batch in enumerate(batches):
                self._interpreter.set_tensor(self._input["index"], batch)
                self._interpreter.invoke()
                raw = self._interpreter.get_tensor(self._output["index"]).reshape(-1)
                if scale:
                    rows[i] = (raw.astype(np.float32) - zero_point) * scale
                else:
                    rows[i] = raw.astype(np.float32)
        return unit_rows(rows)
