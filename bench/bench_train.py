"""Training throughput: `cifake train`'s Trainer path against a plain PyTorch loop, side by side.

Both train the same model (default: the paper's best CNN) from the same decoded uint8 tensors,
with the same batch size, optimiser (AdamW, the recipe's settings), thread count and number of
steps; runs alternate, after one warm-up each. The Trainer side is built by
`modeling.training.train.make_trainer`, the function `cifake train` uses, with per-epoch evaluation and
checkpointing switched off so that both sides do the same work. A last row times one whole
`cifake train` epoch as it runs for a user (validation pass and checkpoint included).

Images: the 10,000 CIFAR-10 test photos from ../shared/data, tiled to --images (content does not
change the speed). Target on CPU: ratio >= 0.8.

    python bench/bench_train.py [--images 100000] [--batch-size 128] [--repeat 3] [--config paper-best]
"""

from __future__ import annotations

import math
import statistics

from _bench import arguments, decoded_photos, header, like_cifake, mean_sd, offline, scratch, seconds, table


def plain_loop(model, pixels, labels, collator, training, steps, device, seed=0):
    """The baseline: index tensors, normalise, forward, backward, step. Nothing else."""
    import torch

    optimizer = torch.optim.AdamW(model.parameters(), lr=training["learning_rate"], weight_decay=training["weight_decay"])
    generator = torch.Generator().manual_seed(seed)
    batch = training["batch_size"]
    order = torch.randperm(len(labels), generator=generator)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")
    model.train()
    for step in range(steps):
        start = (step * batch) % len(labels)
        if start + batch > len(labels):
            order = torch.randperm(len(labels), generator=generator)
            start = 0
        index = order[start : start + batch]
        x = collator.normalize(pixels[index]).to(device, non_blocking=True)
        y = labels[index].to(device, non_blocking=True)
        with autocast:
            loss = model(pixel_values=x, labels=y).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)


def main():
    import torch

    parser = arguments(__doc__)
    parser.add_argument("--images", type=int, default=100_000, help="images per epoch (default: 100,000, CIFAKE's train split)")
    parser.add_argument("--batch-size", type=int, default=None, help="default: the recipe's")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--config", default="paper-best")
    parser.add_argument("--default-malloc", action="store_true", help="leave glibc's allocator settings alone")
    args = parser.parse_args()
    offline()
    # As `cifake train` runs; it applies to the plain loop too, so both sides get the same allocator.
    tuned = not args.default_malloc and like_cifake()

    from transformers import set_seed

    from modeling import CifakeConfig, CifakeForImageClassification, CifakeImageProcessor
    from modeling.data import CifakeCollator, CifakePixels, CifakeTensorDataset, stratified_split
    from modeling.recipes import resolve_recipe
    from modeling.training.train import make_trainer

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    name, fields, training = resolve_recipe(args.config)
    if args.batch_size:
        training["batch_size"] = args.batch_size
    training["augment"] = False  # both sides do the same work
    photos, classes = decoded_photos(args.shared)
    reps = math.ceil(args.images / len(photos))
    pixels = torch.from_numpy(photos.transpose(0, 3, 1, 2).copy()).repeat(reps, 1, 1, 1)[: args.images]
    labels = (torch.arange(args.images) % 2).long()
    data = CifakePixels(pixels, labels, torch.from_numpy(classes).repeat(reps)[: args.images], [], "bench")
    steps = math.ceil(args.images / training["batch_size"])
    processor = CifakeImageProcessor()
    collator = CifakeCollator(processor)

    print(header("CIFAKE kit: training throughput, Trainer vs plain loop (bench/bench_train.py)"))
    print(f"# model {name} ({sum(p.numel() for p in CifakeForImageClassification(CifakeConfig(**fields)).parameters()):,} "
          f"parameters) | batch {training['batch_size']} | {steps} steps = {steps * training['batch_size']:,} images per run "
          f"| {torch.get_num_threads()} threads | device {device} | allocator {'kept freed memory' if tuned else 'glibc default'} "
          f"| n = {args.repeat}")

    def fresh_model():
        set_seed(0)
        return CifakeForImageClassification(CifakeConfig(**fields)).to(device)

    work = scratch("train")

    def trainer_run(run_steps, output_dir):
        trainer = make_trainer(fresh_model(), processor, CifakeTensorDataset(data), None, output_dir,
                               {**training, "early_stopping_patience": 0}, train_size=len(data), max_steps=run_steps,
                               eval_strategy="no", save_strategy="no", load_best_model_at_end=False, disable_tqdm=True)
        return seconds(trainer.train)

    def plain_run(run_steps):
        return seconds(plain_loop, fresh_model(), pixels, labels, collator, training, run_steps, device)

    warm = max(10, steps // 20)
    plain_run(warm)
    trainer_run(warm, work / "warm")
    plain, hf = [], []
    for run in range(args.repeat):
        plain.append(steps * training["batch_size"] / plain_run(steps))
        hf.append(steps * training["batch_size"] / trainer_run(steps, work / f"run{run}"))

    # One epoch exactly as `cifake train` runs it: validation (10%) and a checkpoint at its end.
    train_part, val_part = stratified_split(data, 0.1, seed=0)
    full = make_trainer(fresh_model(), processor, CifakeTensorDataset(train_part), CifakeTensorDataset(val_part),
                        work / "full", {**training, "epochs": 1, "early_stopping_patience": 0}, train_size=len(train_part),
                        disable_tqdm=True)
    epoch_seconds = seconds(full.train)
    ratio = statistics.mean(hf) / statistics.mean(plain)
    print("\n" + table(["loop", "images/s (mean ± sd)", "ratio"],
                       [["plain PyTorch loop", mean_sd(plain, ",.0f"), "1.00"],
                        ["`cifake train` (Trainer, make_trainer)", mean_sd(hf, ",.0f"), f"{ratio:.2f}"]]))
    print(f"\nTarget: ratio >= 0.8 -> {'ok' if ratio >= 0.8 else 'BELOW TARGET'}")
    print(f"One full `cifake train` epoch over {len(train_part):,} images + validation on {len(val_part):,} + checkpoint: "
          f"{epoch_seconds:.1f} s wall")


if __name__ == "__main__":
    main()
