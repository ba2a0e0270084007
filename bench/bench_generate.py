"""Generation throughput of the real Stable Diffusion v1.4 architecture (random weights).

The UNet, VAE and CLIP text encoder are built from SD v1.4's public configs with random weights:
the compute per image is the same as the real checkpoint's (the safety checker is left out). Two
ways of calling it are timed in one run, side by side:

- plain: the pipeline's default call, one prompt at a time, as loaded (fp32 on CPU);
- kit:   what `cifake build` does: fp16 + channels_last UNet on CUDA, batches of --batch-size,
         one CPU generator per image, optionally torch.compile on the UNet (--compile).

On CPU it runs at a reduced size (default 256x256, 4 steps); on CUDA at 512x512, 50 steps.

    python bench/bench_generate.py [--resolution 256] [--steps 4] [--batch-size 4] [--repeat 2] [--compile]
"""

from __future__ import annotations

import argparse
import functools
import statistics

from _bench import header, mean_sd, seconds, table

# Public configs of CompVis/stable-diffusion-v1-4 (unet/, vae/, text_encoder/, scheduler/).
SD14_UNET = dict(
    sample_size=64, in_channels=4, out_channels=4, layers_per_block=2, cross_attention_dim=768,
    attention_head_dim=8, block_out_channels=(320, 640, 1280, 1280), norm_num_groups=32,
    down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
    up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
)
SD14_VAE = dict(
    sample_size=512, in_channels=3, out_channels=3, latent_channels=4, layers_per_block=2,
    block_out_channels=(128, 256, 512, 512), norm_num_groups=32,
    down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
)
SD14_TEXT = dict(
    vocab_size=49408, hidden_size=768, intermediate_size=3072, num_attention_heads=12,
    num_hidden_layers=12, max_position_embeddings=77, hidden_act="quick_gelu", projection_dim=768,
)
SD14_SCHEDULER = dict(
    beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", num_train_timesteps=1000,
    skip_prk_steps=True, set_alpha_to_one=False, steps_offset=1,
)


def sd14_random(dtype, device):
    import torch
    from diffusers import AutoencoderKL, PNDMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    from dataset_builder.tiny_generator import make_tiny_tokenizer

    torch.manual_seed(0)
    tokenizer = make_tiny_tokenizer()  # a byte-level stand-in: the text encoder's cost is per token slot
    text = CLIPTextModel(CLIPTextConfig(**SD14_TEXT, bos_token_id=tokenizer.bos_token_id,
                                        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id))
    pipe = StableDiffusionPipeline(
        vae=AutoencoderKL(**SD14_VAE), text_encoder=text, tokenizer=tokenizer, unet=UNet2DConditionModel(**SD14_UNET),
        scheduler=PNDMScheduler(**SD14_SCHEDULER), safety_checker=None, feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(device=device, dtype=dtype)


def time_calls(call, images_per_call, repeat):
    seconds(call)  # warm-up (and compile)
    return [images_per_call / seconds(call) for _ in range(repeat)]


def main():
    import torch

    from dataset_builder.generate import GenerationSettings, _run_pipeline
    from dataset_builder.prompts import prompt_for

    cuda = torch.cuda.is_available()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resolution", type=int, default=512 if cuda else 256)
    parser.add_argument("--steps", type=int, default=50 if cuda else 4)
    parser.add_argument("--batch-size", type=int, default=16 if cuda else 4)
    parser.add_argument("--repeat", type=int, default=3 if cuda else 2)
    parser.add_argument("--compile", action="store_true", help="also torch.compile the kit's UNet")
    args = parser.parse_args()
    device = torch.device("cuda" if cuda else "cpu")
    print(header("CIFAKE kit: SD v1.4-architecture generation throughput (bench/bench_generate.py)"))
    print(f"# {args.resolution}x{args.resolution}, {args.steps} steps, guidance 7.5, kit batch {args.batch_size}, n = {args.repeat}")

    plain = sd14_random(torch.float32, device)
    plain_call = functools.partial(plain, prompt_for(3, 0), num_inference_steps=args.steps, height=args.resolution,
                                   width=args.resolution)
    plain_rates = time_calls(plain_call, 1, args.repeat)
    del plain, plain_call
    kit = sd14_random(torch.float16 if cuda else torch.float32, device)
    if cuda:
        kit.unet.to(memory_format=torch.channels_last)
    if args.compile:
        kit.unet = torch.compile(kit.unet, mode="max-autotune-no-cudagraphs" if cuda else "default")
    settings = GenerationSettings(num_inference_steps=args.steps, guidance_scale=7.5, resolution=args.resolution)
    prompts = [prompt_for(c % 10, c) for c in range(args.batch_size)]
    kit_rates = time_calls(lambda: _run_pipeline(kit, prompts, list(range(args.batch_size)), settings), args.batch_size, args.repeat)

    kit_name = f"kit: batch {args.batch_size}, {'fp16 + channels_last' if cuda else 'fp32'}{' + compile' if args.compile else ''}"
    print("\n" + table(["call", "images/s (mean ± sd)", "ratio"], [
        ["plain default call, batch 1, fp32", mean_sd(plain_rates, ".3f"), "1.00"],
        [kit_name, mean_sd(kit_rates, ".3f"), f"{statistics.mean(kit_rates) / statistics.mean(plain_rates):.2f}"]]))
    per_image = 1 / statistics.mean(kit_rates)
    print(f"\nAt this rate, 60,000 FAKE images take {60_000 * per_image / 3600:.1f} h at these settings.")


if __name__ == "__main__":
    main()
