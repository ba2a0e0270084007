"""`cifake build` refuses a generation size that cannot fit in memory, before anything is allocated or written."""

import json
import re

import pytest

from cifake_kit.errors import CifakeError
from dataset_builder.build import build_dataset
from dataset_builder.generate import GenerationSettings

GB = 2**30

# The published configs of CompVis/stable-diffusion-v1-4: a pipeline folder without weights, enough for the
# estimate, which is made from configs alone.
SD14 = {
    "model_index.json": {
        "_class_name": "StableDiffusionPipeline", "feature_extractor": ["transformers", "CLIPImageProcessor"],
        "safety_checker": ["stable_diffusion", "StableDiffusionSafetyChecker"], "scheduler": ["diffusers", "PNDMScheduler"],
        "text_encoder": ["transformers", "CLIPTextModel"], "tokenizer": ["transformers", "CLIPTokenizer"],
        "unet": ["diffusers", "UNet2DConditionModel"], "vae": ["diffusers", "AutoencoderKL"]},
    "unet/config.json": {
        "_class_name": "UNet2DConditionModel", "attention_head_dim": 8, "block_out_channels": [320, 640, 1280, 1280],
        "cross_attention_dim": 768, "layers_per_block": 2, "sample_size": 64, "in_channels": 4, "out_channels": 4,
        "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
        "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"]},
    "vae/config.json": {
        "_class_name": "AutoencoderKL", "block_out_channels": [128, 256, 512, 512], "layers_per_block": 2,
        "latent_channels": 4, "sample_size": 512, "down_block_types": ["DownEncoderBlock2D"] * 4,
        "up_block_types": ["UpDecoderBlock2D"] * 4},
    "text_encoder/config.json": {
        "model_type": "clip_text_model", "hidden_act": "quick_gelu", "hidden_size": 768, "intermediate_size": 3072,
        "max_position_embeddings": 77, "num_attention_heads": 12, "num_hidden_layers": 12, "vocab_size": 49408},
    "safety_checker/config.json": {
        "model_type": "clip", "projection_dim": 768, "text_config": {},
        "vision_config": {"hidden_size": 1024, "intermediate_size": 4096, "num_attention_heads": 16,
                          "num_hidden_layers": 24, "patch_size": 14}},
}


def config_folder(folder, configs):
    for name, config in configs.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(json.dumps(config))
    return folder


@pytest.fixture
def free_memory(monkeypatch):
    """Pretend `size` bytes are free, whatever this machine has."""
    def pretend(size):
        monkeypatch.setattr("dataset_builder.memory.free_bytes", lambda device=None: size)
    return pretend


@pytest.fixture
def no_generation(monkeypatch):
    """A build that gets as far as generating fails at once instead of allocating what it asked for."""
    def refuse(*args, **kwargs):
        raise AssertionError("generation started: the size was not refused before")
    monkeypatch.setattr("dataset_builder.generate._run_pipeline", refuse)


def test_a_resolution_that_cannot_fit_is_refused_before_anything_is_written(tmp_path, build_kwargs, free_memory,
                                                                              no_generation):
    from dataset_builder.memory import generator_shape

    free_memory(16 * GB)
    out = tmp_path / "out"
    with pytest.raises(CifakeError) as refused:
        build_dataset(output_dir=out, **{**build_kwargs, "resolution": 65536, "batch_size": 8})
    message = str(refused.value)
    assert "\n" not in message
    found = re.fullmatch(r"Generating 8 images at a time at 65536x65536 needs about ([\d,.]+) GB \(weights and "
                         r"activations\), more than the 16\.0 GB free here; nothing was generated\. Pass --resolution "
                         r"(\d+) or less \(a multiple of 8\)\.", message)
    assert found, message
    assert float(found[1].replace(",", "")) > 1000  # terabytes: the VAE decoder at 65536x65536
    assert not out.exists()
    # The size named is the largest that fits: one step of 8 more does not.
    largest = int(found[2])
    shape = generator_shape(build_kwargs["generator"], build_kwargs["pipe"])
    assert shape.need_bytes(8, largest, True) <= 16 * GB < shape.need_bytes(8, largest + 8, True)
    assert 512 <= largest < 2048


def test_a_smaller_batch_is_named_when_it_lets_the_size_fit(tmp_path, build_kwargs, free_memory, no_generation):
    from dataset_builder.memory import generator_shape

    shape = generator_shape(build_kwargs["generator"], build_kwargs["pipe"])
    free_memory(shape.need_bytes(2, 1024, True))  # guidance 6.0: the UNet sees both halves
    with pytest.raises(CifakeError, match=r"at 1024x1024 needs about .* Pass --batch-size 2 or less, or --resolution "
                                          r"\d+ or less \(a multiple of 8\) at --batch-size 4\.$"):
        build_dataset(output_dir=tmp_path / "out", **{**build_kwargs, "resolution": 1024})
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_ordinary_sizes_fit(tmp_path, free_memory):
    """SD v1.4 at 512x512, 8 at a time (the defaults), fits a 24 GB machine with room; so does the toy pipeline."""
    from dataset_builder.memory import check_generation_fits, generator_shape

    sd = str(config_folder(tmp_path / "sd14", SD14))
    shape = generator_shape(sd)
    assert (shape.scale_factor, shape.native) == (8, 512)
    assert 1.3e9 < shape.weights / 4 < 1.4e9  # UNet, VAE, text encoder, safety checker: 1.37 billion parameters
    need = shape.need_bytes(8, 512, True)
    assert 10 * GB < need < 18 * GB, need / GB  # measured: 5.1 GB of weights + about 8 GB at the peak
    tiny = generator_shape("tiny-random")
    assert tiny.native == 64 and tiny.need_bytes(8, 64, True) < 1 * GB
    free_memory(22 * GB)  # what a 24 GB machine has available
    check_generation_fits(GenerationSettings(generator=sd), device="cpu")


@pytest.mark.slow
def test_the_default_size_is_checked_too(tmp_path, free_memory):
    from dataset_builder.memory import check_generation_fits

    free_memory(8 * GB)
    sd = str(config_folder(tmp_path / "sd14", SD14))
    with pytest.raises(CifakeError, match=r"Generating 8 images at a time at 512x512 \(the pipeline's own size\) needs "
                                          r"about 1\d\.\d GB .* 8\.0 GB free here; .* Pass --batch-size [1-3] or less, "
                                          r"or --resolution \d+ or less \(a multiple of 8\) at --batch-size 8\.$"):
        check_generation_fits(GenerationSettings(generator=sd), device="cpu")
    free_memory(4 * GB)  # less than the weights
    with pytest.raises(CifakeError, match=r"Even 8x8 images one at a time need 5\.\d GB: free some memory, or build "
                                          r"on a machine with more\.$"):
        check_generation_fits(GenerationSettings(generator=sd, resolution=256), device="cpu")


def test_resolution_must_suit_the_vae(tmp_path):
    from dataset_builder.memory import check_generation_fits

    # A VAE of five levels scales by 16: a multiple of 8 is not enough.
    configs = {**SD14, "vae/config.json": {**SD14["vae/config.json"], "block_out_channels": [128, 256, 512, 512, 512],
                                           "down_block_types": ["DownEncoderBlock2D"] * 5,
                                           "up_block_types": ["UpDecoderBlock2D"] * 5}}
    folder = str(config_folder(tmp_path / "sd-x16", configs))
    with pytest.raises(CifakeError, match=r"^--resolution must be a multiple of 16 for this generator \(its VAE's scale "
                                          r"factor\), got 520\. Try 512\.$"):
        check_generation_fits(GenerationSettings(generator=folder, resolution=520), device="cpu")


@pytest.mark.parametrize("resolution", [0, -512, 100])
def test_resolution_off_the_latent_grid_is_refused(tmp_path, build_kwargs, resolution, no_generation):
    with pytest.raises(CifakeError, match=rf"^--resolution must be a multiple of 8 of at least 8 .*got {resolution}\."):
        build_dataset(output_dir=tmp_path / "out", **{**build_kwargs, "resolution": resolution})
    assert not (tmp_path / "out").exists()


def test_a_generator_that_cannot_be_found_is_named_before_anything_is_written(tmp_path, build_kwargs):
    out = tmp_path / "out"
    with pytest.raises(CifakeError, match=r"^Cannot load the generator 'nobody/no-such-pipeline' \(.*\)\. Pass "
                                          r"--generator PATH .*--generator tiny-random for the offline toy pipeline\.$"):
        build_dataset(output_dir=out, **{**build_kwargs, "generator": "nobody/no-such-pipeline", "pipe": None})
    assert not out.exists()
