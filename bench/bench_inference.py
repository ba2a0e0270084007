"""Inference speed on CPU: one image through processor + model, and `cifake evaluate` over 20,000.

1. Latency of a single image as a user sends it: PIL image -> CifakeImageProcessor -> model ->
   probabilities, for a 512x512 photo-sized image and a 32x32 one, and through
   `pipeline("image-classification")`; p50 / p95 over --repeat calls after 20 warm-up calls.
2. Throughput of `cifake evaluate` (modeling.scoring.evaluation.evaluate_model) over a 20,000-image test
   split: cold (first run decodes every JPEG and caches tensors) and warm (cached), end to end
   including loading the model and writing the report; and the bare forward passes alone.

Images: the 10,000 CIFAR-10 test JPEGs from ../shared/data, plus the same photos with a faint
pattern as the FAKE-labelled half (speed only; not generated images). The model is the paper's
best CNN with its initial weights (speed does not depend on training).

    python bench/bench_inference.py [--repeat 300] [--evaluate-runs 3]
"""

from __future__ import annotations

import statistics

from _bench import arguments, header, mean_sd, offline, percentiles, scratch, seconds, table, timed, write_test_folder


def main():
    parser = arguments(__doc__)
    parser.add_argument("--repeat", type=int, default=300)
    parser.add_argument("--evaluate-runs", type=int, default=3)
    parser.add_argument("--config", default="paper-best")
    args = parser.parse_args()
    work = scratch("infer")
    offline(HF_DATASETS_CACHE=str(work / "hf-cache"))

    import numpy as np
    import torch
    from PIL import Image
    from transformers import pipeline
    from transformers.utils import logging as hf_logging

    from cifake_kit.runtime import keep_freed_memory
    from modeling import CifakeConfig, CifakeForImageClassification, CifakeImageProcessor
    from modeling.data import CifakeCollator, load_pixels
    from modeling.inference.core import predict
    from modeling.recipes import resolve_recipe
    from modeling.scoring.evaluation import evaluate_model

    keep_freed_memory()  # as `cifake evaluate` runs
    hf_logging.disable_progress_bar()
    print(header("CIFAKE kit: inference latency and `cifake evaluate` throughput (bench/bench_inference.py)"))
    name, fields, _ = resolve_recipe(args.config)
    torch.manual_seed(0)
    model_dir = work / "model"
    CifakeForImageClassification(CifakeConfig(**fields)).save_pretrained(model_dir)
    CifakeImageProcessor().save_pretrained(model_dir)
    model = CifakeForImageClassification.from_pretrained(model_dir).eval()
    processor = CifakeImageProcessor.from_pretrained(model_dir)
    print(f"# model {name} | {torch.get_num_threads()} threads | CPU | single-image n = {args.repeat}")

    rng = np.random.default_rng(0)
    images = {f"{n}x{n} RGB": Image.fromarray(rng.integers(0, 256, (n, n, 3), dtype=np.uint8)) for n in (512, 32)}

    def direct(image):
        with torch.inference_mode():
            return model(**processor(image, return_tensors="pt")).logits.softmax(-1)

    classifier = pipeline("image-classification", model=str(model_dir), device="cpu", trust_remote_code=False)
    rows = []
    for label, image in images.items():
        for way, call in (("processor + model", direct), ("pipeline()", classifier)):
            for _ in range(20):
                call(image)
            samples = [seconds(call, image) * 1000 for _ in range(args.repeat)]
            rows.append([f"{label}, {way}"] + [f"{p:.2f}" for p in percentiles(samples, 50, 95)])
    print("\n" + table(["one image", "p50 (ms)", "p95 (ms)"], rows))

    data = write_test_folder(args.shared, work / "data")
    runs = [timed(evaluate_model, model_dir, data=str(data), split="test", output_dir=work / f"eval{run}")
            for run in range(args.evaluate_runs + 1)]
    assert all(sum(map(sum, result.metrics["confusion_matrix"])) == 20_000 for _, result in runs)
    cold, *warms = [took for took, _ in runs]
    pixels = load_pixels(data, "test", processor)
    collator = CifakeCollator(processor)
    predict(model, collator, pixels.pixels[:2048])
    forward = [len(pixels) / seconds(predict, model, collator, pixels.pixels) for _ in range(args.evaluate_runs)]
    print("\n" + table(["`cifake evaluate`, 20,000 images", "images/s", "seconds"], [
        ["cold: decode + cache + score + report", f"{20_000 / cold:,.0f}", f"{cold:.2f}"],
        [f"warm: cached tensors + score + report (n = {len(warms)})", mean_sd([20_000 / s for s in warms], ",.0f"),
         f"{statistics.mean(warms):.2f}"],
        [f"forward passes alone, batch 1024 (n = {len(forward)})", mean_sd(forward, ",.0f"),
         f"{20_000 / statistics.mean(forward):.2f}"]]))


if __name__ == "__main__":
    main()
