"""A sentence-transformers text model run as a dynamically int8-quantised ONNX graph.

    LOOKALIKE_TEXT_BACKEND=onnx

Why: on a 2-core ingest host the torch MiniLM costs more CPU per product than the image model.
The graph is exported here, from the weights already on disk (nothing is downloaded), with the
mean pooling inside it, quantised with onnxruntime's dynamic int8 quantisation, and cached as
``<cache_dir>/<weights sha256>-int8pc.onnx`` so the export runs once per model and machine.
Exporting needs torch, transformers and onnx (the ``clip`` and ``onnx`` extras); running a
cached graph needs only onnxruntime and tokenizers.

Only BERT-style models whose sentence-transformers pipeline is Transformer, mean Pooling and
(optionally) Normalize are accepted: the output is L2-normalised either way.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lookalike.errors import MissingExtra, ModelError
from lookalike.vectorizers.base import TextEmbedder
from lookalike.vectorizers.sentence import model_version, resolve_text_model
from lookalike.vectors import unit_rows

_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
_WEIGHTS = ("model.safetensors", "pytorch_model.bin")


def weights_digest(folder: Path) -> str:
    """sha256 of the model's weights file: the key of its exported graph."""
    for name in _WEIGHTS:
        path = folder / name
        if path.is_file():
            digest = hashlib.sha256()
            with path.open("rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    digest.update(block)
            return digest.hexdigest()
    raise ModelError(f"no weights file ({', '.join(_WEIGHTS)}) in {folder}", model=str(folder))


def _check_pipeline(folder: Path) -> None:
    """Refuse models whose pooling the exported graph would not reproduce."""
    modules = json.loads((folder / "modules.json").read_text())
    kinds = [m["type"].rsplit(".", 1)[-1] for m in modules]
    if kinds[:2] != ["Transformer", "Pooling"] or set(kinds[2:]) - {"Normalize"}:
        raise ModelError(f"ONNX text backend: unsupported pipeline {kinds}", model=str(folder))
    pooling = next(m for m in modules if m["type"].endswith("Pooling"))
    config = json.loads((folder / pooling["path"] / "config.json").read_text())
    if not config.get("pooling_mode_mean_tokens") or any(
        v
        for k, v in config.items()
        if k.startswith("pooling_mode_") and k != "pooling_mode_mean_tokens"
    ):
        raise ModelError("ONNX text backend: only mean pooling is supported", model=str(folder))


def export_int8(folder: Path, target: Path) -> None:
    """Export the transformer with mean pooling to ONNX, quantise it to int8, write ``target``.

    Written to a temporary name and renamed, so a half-written graph is never loaded.
    """
    try:
        import torch
        from transformers import AutoModel
    except ImportError as exc:
        raise MissingExtra("torch", "clip") from exc
    try:
        import onnx  # noqa: F401  (torch.onnx.export needs it)
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError as exc:
        raise MissingExtra("onnx", "onnx") from exc

    class MeanPooled(torch.nn.Module):
        def __init__(self, model: Any) -> None:
            super().__init__()
            self.model = model

        def forward(self, ids: Any, mask: Any, types: Any) -> Any:
            hidden = self.model(input_ids=ids, attention_mask=mask, token_type_ids=types)[0]
            weights = mask.unsqueeze(-1).to(hidden.dtype)
            return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)

    model = AutoModel.from_pretrained(str(folder)).eval()
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        plain = Path(tmp) / "fp32.onnx"
        quantised = Path(tmp) / "int8.onnx"
        example = torch.ones(2, 8, dtype=torch.long)
        axes = {name: {0: "batch", 1: "tokens"} for name in _INPUTS}
        with torch.no_grad():
            torch.onnx.export(
                MeanPooled(model),
                (example, example, torch.zeros_like(example)),
                str(plain),
                input_names=list(_INPUTS),
                output_names=["embedding"],
                dynamic_axes={**axes, "embedding": {0: "batch"}},
                opset_version=17,
                dynamo=False,
            )
        # Per-channel scales: cosine to torch median 0.994 (per-tensor: 0.963), same speed.
        quantize_dynamic(str(plain), str(quantised), weight_type=QuantType.QInt8, per_channel=True)
        os.replace(quantised, target)


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/lookalike/onnx`` (``~/.cache/lookalike/onnx``)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "lookalike" / "onnx"


class OnnxTextEmbedder(TextEmbedder):
    """The int8 ONNX twin of ``SentenceTransformerTextEmbedder`` (same weights, same pooling).

    Its tag differs from the torch model's (``@<version>-onnx-int8``), so switching backends
    re-embeds stored texts instead of mixing the two kinds of vector.
    ``num_threads`` is 1 by default: during ingest the image workers hold the other cores.
    """

    def __init__(
        self,
        model_name_or_path: str,
        cache_dir: str | Path | None = None,
        batch_size: int = 64,
        num_threads: int = 1,
    ) -> None:
        try:
            import onnxruntime as ort
            from tokenizers import Tokenizer
        except ImportError as exc:
            raise MissingExtra("onnxruntime", "onnx") from exc
        path = resolve_text_model(model_name_or_path)
        folder = Path(path)
        if not (folder / "modules.json").is_file():
            raise ModelError(
                f"ONNX text backend needs a local sentence-transformers folder, not {path!r}",
                model=model_name_or_path,
            )
        _check_pipeline(folder)
        graph = Path(cache_dir or default_cache_dir()) / f"{weights_digest(folder)}-int8pc.onnx"
        if not graph.is_file():
            export_int8(folder, graph)
        options = ort.SessionOptions()
        options.intra_op_num_threads = num_threads
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self._session = ort.InferenceSession(
                str(graph), options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own untyped errors
            raise ModelError(f"cannot load {graph}: {exc}", model=model_name_or_path) from None
        self._wanted = {i.name for i in self._session.get_inputs()}
        max_len = 256
        st_config = folder / "sentence_bert_config.json"
        if st_config.is_file():
            max_len = int(json.loads(st_config.read_text()).get("max_seq_length", max_len))
        self._tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self._tokenizer.enable_truncation(max_length=max_len)
        self._tokenizer.enable_padding(pad_id=self._tokenizer.token_to_id("[PAD]") or 0)
        self._lock = threading.Lock()
        self.batch_size = batch_size
        self.max_seq_length = max_len
        self.graph = graph
        display = folder.name
        self.name = model_name_or_path if path != model_name_or_path else display
        self.version = f"{model_version(path)}-onnx-int8"
        self.dim = 0
        self.dim = int(self.embed_texts(["dimension probe"]).shape[1])

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        # Longest first in batches of similar length: little padding, as sentence-transformers.
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        out: np.ndarray | None = None
        for start in range(0, len(order), self.batch_size):
            chunk = order[start : start + self.batch_size]
            vectors = self._run([texts[i] for i in chunk])
            if out is None:
                out = np.empty((len(texts), vectors.shape[1]), np.float32)
            out[chunk] = vectors
        assert out is not None
        return unit_rows(out)

    def _run(self, texts: list[str]) -> np.ndarray:
        with self._lock:
            encoded = self._tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encoded], dtype=np.int64)
        feeds = {
            "input_ids": ids,
            "attention_mask": np.array([e.attention_mask for e in encoded], dtype=np.int64),
            "token_type_ids": np.array([e.type_ids for e in encoded], dtype=np.int64),
        }
        try:
            (result,) = self._session.run(
                None, {k: v for k, v in feeds.items() if k in self._wanted}
            )
        except Exception as exc:  # noqa: BLE001
            raise ModelError(f"{self.name} failed to encode: {exc}", model=self.name) from None
        return np.asarray(result, dtype=np.float32)
