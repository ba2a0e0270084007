"""A tiny Stable Diffusion pipeline with random weights, built without any download.

It has the same parts and data flow as SD v1.4 (CLIP text encoder, UNet with cross-attention,
VAE, DDIM scheduler) at a toy size, so the whole generation path runs offline in milliseconds.
Its images are noise-like textures from random weights: they are NOT Stable Diffusion output and
must never be presented as such. The kit uses it for the offline demo build and the tests, and
records its images' `generator_id` as `cifake_kit.schema.DEMO_GENERATOR_ID`.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

_SPECIAL_TOKENS = ["<|startoftext|>", "<|endoftext|>"]


def _byte_alphabet() -> list[str]:
    # CLIP's byte-level BPE maps each byte to a printable character; a vocabulary of single
    # characters (plus their end-of-word forms) covers every input with no merges.
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    printable += list(range(ord("®"), ord("ÿ") + 1))
    chars, extra = [], 0
    for byte in range(256):
        if byte in printable:
            chars.append(chr(byte))
        else:
            chars.append(chr(256 + extra))
            extra += 1
    return chars


def make_tiny_tokenizer():
    """A CLIPTokenizer over a byte-level vocabulary written to a temporary folder."""
    from transformers import CLIPTokenizer

    chars = _byte_alphabet()
    vocab = {tok: i for i, tok in enumerate(chars + [c + "</w>" for c in chars] + _SPECIAL_TOKENS)}
    with tempfile.TemporaryDirectory() as folder:
        Path(folder, "vocab.json").write_text(json.dumps(vocab))
        Path(folder, "merges.txt").write_text("#version: 0.2\n")
        Path(folder, "tokenizer_config.json").write_text(json.dumps({"model_max_length": 77}))
        tokenizer = CLIPTokenizer.from_pretrained(folder)
    return tokenizer


def make_tiny_pipeline(seed: int = 0, safety_checker=None, feature_extractor=None):
    """A random-weight `StableDiffusionPipeline` producing 64x64 images, deterministic in `seed`."""
    import torch
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    tokenizer = make_tiny_tokenizer()
    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        block_out_channels=(32, 64),
        layers_per_block=1,
        sample_size=32,
        in_channels=4,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32,
        norm_num_groups=8,
    )
    torch.manual_seed(seed)
    vae = AutoencoderKL(
        block_out_channels=[32, 64],
        in_channels=3,
        out_channels=3,
        down_block_types=["DownEncoderBlock2D", "DownEncoderBlock2D"],
        up_block_types=["UpDecoderBlock2D", "UpDecoderBlock2D"],
        latent_channels=4,
        norm_num_groups=8,
    )
    torch.manual_seed(seed)
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
            hidden_size=32,
            intermediate_size=37,
            layer_norm_eps=1e-05,
            num_attention_heads=4,
            num_hidden_layers=5,
            vocab_size=len(tokenizer),
        )
    )
    scheduler = DDIMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
    )
    return StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=scheduler,
        safety_checker=safety_checker,
        feature_extractor=feature_extractor,
        requires_safety_checker=False,
    )


def save_tiny_pipeline(folder: str | Path, seed: int = 0) -> Path:
    """Write the tiny pipeline as a diffusers folder (`model_index.json` + components)."""
    folder = Path(folder)
    make_tiny_pipeline(seed).save_pretrained(folder)
    return folder
