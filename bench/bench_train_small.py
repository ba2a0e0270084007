"""Small-scale training: a whole `cifake train` run against a plain loop that also validates every epoch.

At ~3,000 images an epoch lasts about a second, so what a run does between epochs (evaluation,
metrics, checkpoints, the console) and around them (threshold choice, the final report and its
figures) can dominate. Both sides here train the same model on the same images for the same
number of epochs with early stopping off:

- `cifake train`: `modeling.training.train.train(...)` exactly as the command runs it (data decoded once and
  cached beforehand, as on any second run), output folder, checkpoints, report and all;
- the plain loop: index tensors, forward, backward, AdamW step; after every epoch a forward pass
  over the same validation images and their accuracy. Nothing written.

Data: the genuine task of ../shared (bench/_genuine.py), or any dataset folder given with --data.
Runs alternate after a warm-up of each; the ratio is the mean wall time of `cifake train` over the
plain loop's. Target: <= 1.3.

    python bench/bench_train_small.py [--epochs 60] [--repeat 2] [--config paper-best] [--data DIR]
"""

from __future__ import annotations

import statistics

from _bench import arguments, header, mean_sd, seconds, table
from _genuine import bench_task


def plain_run(fields, training, train_pixels, val_pixels, collator, epochs, seed=0) -> None:
    import torch
    from transformers import set_seed

    from modeling import CifakeConfig, CifakeForImageClassification

    set_seed(seed)
    model = CifakeForImageClassification(CifakeConfig(**fields))
    optimizer = torch.optim.AdamW(model.parameters(), lr=training["learning_rate"], weight_decay=training["weight_decay"])
    generator = torch.Generator().manual_seed(seed)
    batch = training["batch_size"]
    x_all, y_all = train_pixels.pixels, train_pixels.labels
    for _ in range(epochs):
        model.train()
        order = torch.randperm(len(y_all), generator=generator)
        for begin in range(0, len(order), batch):
            index = order[begin : begin + batch]
            loss = model(pixel_values=collator.normalize(x_all[index]), labels=y_all[index]).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        model.eval()
        with torch.inference_mode():
            logits = torch.cat([model(pixel_values=collator.normalize(val_pixels.pixels[i : i + 512])).logits
                                for i in range(0, len(val_pixels), 512)])
        _ = (logits.argmax(-1) == val_pixels.labels).float().mean().item()


def kit_run(data, output_dir, config, epochs) -> None:
    from modeling.training.train import train

    train(data=str(data), output_dir=output_dir, config=config, num_train_epochs=epochs, early_stopping_patience=0,
          overwrite=True)


def main():
    parser = arguments(__doc__, data=True)
    parser.add_argument("--epochs", type=float, default=60)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--config", default="paper-best")
    args = parser.parse_args()
    work, data = bench_task(args, "small")

    import torch

    from modeling import CifakeImageProcessor
    from modeling.data import CifakeCollator, load_pixels, stratified_split
    from modeling.recipes import resolve_recipe

    name, fields, training = resolve_recipe(args.config)
    processor = CifakeImageProcessor()
    full = load_pixels(data, "train", processor)  # decodes once and caches, as a first `cifake train` would
    load_pixels(data, "test", processor)
    train_pixels, val_pixels = stratified_split(full, 0.1, 0)
    if training["augment"]:
        print("# note: the recipe augments; the plain loop does not (a few % of step time)")
    collator = CifakeCollator(processor)
    print(header("CIFAKE kit: small-scale training, whole `cifake train` run vs plain loop (bench/bench_train_small.py)"))
    print(f"# {name} | {len(train_pixels):,} training + {len(val_pixels):,} validation images | {args.epochs:g} epochs, "
          f"batch {training['batch_size']}, early stopping off | {torch.get_num_threads()} threads | n = {args.repeat} "
          f"after a warm-up of each | data: {data}")
    plain_run(fields, training, train_pixels, val_pixels, collator, 1)
    kit_run(data, work / "warm", args.config, 1)
    plain, kit = [], []
    for run in range(args.repeat):
        plain.append(seconds(plain_run, fields, training, train_pixels, val_pixels, collator, int(args.epochs)))
        kit.append(seconds(kit_run, data, work / f"run{run}", args.config, args.epochs))
    images = len(train_pixels) * args.epochs
    ratio = statistics.mean(kit) / statistics.mean(plain)
    print("\n" + table(["run", "wall s (mean ± sd)", "training images/s", "ratio"],
                       [["plain loop, validating every epoch", mean_sd(plain, ".1f"),
                         f"{images / statistics.mean(plain):,.0f}", "1.00"],
                        ["whole `cifake train` run (checkpoints, report, figures)", mean_sd(kit, ".1f"),
                         f"{images / statistics.mean(kit):,.0f}", f"{ratio:.2f}"]]))
    print(f"\nTarget: ratio <= 1.3 -> {'ok' if ratio <= 1.3 else 'ABOVE TARGET'}")


if __name__ == "__main__":
    main()
