"""Helpers for the image, vectorizer and attribute tests: where ../shared is, and a tiny CLIP.

The tiny CLIP is randomly initialised and built offline (no hub access): a byte-level BPE
tokenizer with no merges, a 2-layer text and vision tower, saved as a plain Hugging Face folder
that sentence-transformers loads as a multimodal Transformer module.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED = Path(
    os.environ.get("LOOKALIKE_SHARED_DIR", Path(__file__).resolve().parents[2] / "shared")
)
MODELS = SHARED / "models"
FASHION = SHARED / "datasets" / "fashion-10k"

# (file, tensor hint, documented dimension)
MOBILENETS = [
    ("tf2_mobilenet_v2_1.0_224_ptq.tflite", "GlobalPool", 1280),
    ("mobilenet_v1_1.0_224_quant_embedding_extractor.tflite", None, 1024),
    ("mobilenet_v2_1.0_224_quant.tflite", "MobilenetV2/Logits/AvgPool", 1280),
]


def shared_file(path: Path) -> Path:
    """``path`` under ../shared, or skip the test saying where it was looked for."""
    if not path.exists():
        pytest.skip(f"{path} is absent (set LOOKALIKE_SHARED_DIR to the shared/ folder)")
    return path


def _byte_level_alphabet() -> list[str]:
    """The 256 printable stand-ins byte-level BPE uses for raw bytes (as in GPT-2 / CLIP)."""
    printable = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    codes = printable[:]
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            codes.append(256 + extra)
            extra += 1
    return [chr(c) for c in codes]


def build_tiny_clip(folder: Path, image_size: int = 32, projection_dim: int = 16) -> Path:
    """Save a tiny random CLIP model with its processor as a Hugging Face folder."""
    import torch
    from transformers import (
        CLIPConfig,
        CLIPImageProcessorPil,
        CLIPModel,
        CLIPProcessor,
        CLIPTokenizer,
    )

    alphabet = _byte_level_alphabet()
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for suffix in ("", "</w>"):
        for ch in alphabet:
            vocab[ch + suffix] = len(vocab)
    tokenizer = CLIPTokenizer(vocab=vocab, merges=[])
    small = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2}
    config = CLIPConfig(
        text_config={
            **small,
            "num_attention_heads": 2,
            "vocab_size": len(vocab),
            "max_position_embeddings": 64,
            "bos_token_id": 0,
            "eos_token_id": 1,
            "pad_token_id": 1,
        },
        vision_config={
            **small,
            "num_attention_heads": 2,
            "image_size": image_size,
            "patch_size": 16,
        },
        projection_dim=projection_dim,
    )
    torch.manual_seed(0)
    model = CLIPModel(config)
    image_processor = CLIPImageProcessorPil(
        size={"shortest_edge": image_size}, crop_size={"height": image_size, "width": image_size}
    )
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    CLIPProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(folder)
    return folder
