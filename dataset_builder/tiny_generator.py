"""A tiny Stable Diffusion pipeline with random weights, built without any download.

SD v1.4's parts and data flow (CLIP text encoder, cross-attention UNet, VAE, DDIM) at a toy size: the
generation path runs offline in milliseconds. Its images are noise from random weights, NOT Stable Diffusion
output; they are recorded under `cifake_kit.schema.DEMO_GENERATOR_ID`.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

_SPECIAL_TOKENS = ["<|startoftext|>", "<|endoftext|>"]


def make_tiny_tokenizer():
    """A CLIPTokenizer over a byte-level vocabulary written to a temporary folder."""
    from transformers import CLIPTokenizer
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    # CLIP's byte-level alphabet, one character per byte: single characters cover every input with no merges.
    table = bytes_to_unicode()
    chars = [table[byte] for byte in range(256)]
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
    unet = UNet2DConditionModel(block_out_channels=(32, 64), layers_per_block=1, sample_size=32, in_channels=4,
                                out_channels=4, down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                                up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), cross_attention_dim=32,
                                norm_num_groups=8)
    torch.manual_seed(seed)
    vae = AutoencoderKL(block_out_channels=[32, 64], in_channels=3, out_channels=3,
                        down_block_types=["DownEncoderBlock2D", "DownEncoderBlock2D"],
                        up_block_types=["UpDecoderBlock2D", "UpDecoderBlock2D"], latent_channels=4, norm_num_groups=8)
    torch.manual_seed(seed)
    text_encoder = CLIPTextModel(CLIPTextConfig(
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
        hidden_size=32, intermediate_size=37, layer_norm_eps=1e-05, num_attention_heads=4, num_hidden_layers=5,
        vocab_size=len(tokenizer)))
    scheduler = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
                              set_alpha_to_one=False, steps_offset=1)
    return StableDiffusionPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
                                   scheduler=scheduler, safety_checker=safety_checker,
                                   feature_extractor=feature_extractor, requires_safety_checker=False)

