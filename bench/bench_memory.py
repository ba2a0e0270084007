"""The kit's memory estimate (modeling/memory.py) against the memory real steps take.

`cifake train` and `cifake evaluate` refuse a model that will not fit before allocating it, from
an estimate made on PyTorch's meta device. This script keeps the estimate honest: for each recipe
it runs, in a fresh process, two training steps (forward, backward, AdamW) at the recipe's batch
size and, in another, scoring at evaluate's batch size, and prints the estimate beside the growth
of the process's peak resident memory. An estimate far below the measurement would let a job be
killed; far above, it would refuse jobs that fit.

    python bench/bench_memory.py [--recipes paper-best resnet18-cifar ...] [--eval-batch 1024]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

from _bench import header, table

RECIPES = ["paper-best", "cifake-cnn-plus", "cifake-forensic", "resnet18-cifar", "vit-tiny-32", "vit-tiny-224"]

_MEASURE = """
import json, resource, sys, torch
from modeling import CifakeConfig, CifakeForImageClassification
from modeling.memory import footprint
from modeling.recipes import resolve_recipe
name, batch, training = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "train"
_, fields, _ = resolve_recipe(name)
config = CifakeConfig(**fields)
found = footprint(config)
estimate = found.training_bytes(batch) if training else found.inference_bytes(batch)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
model = CifakeForImageClassification(config).train(training)
images, labels = torch.randn(batch, 3, 32, 32), torch.randint(0, 2, (batch,))
if training:
    optimizer = torch.optim.AdamW(model.parameters())
    for _ in range(2):
        model(pixel_values=images, labels=labels).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
else:
    with torch.inference_mode():
        for _ in range(2):
            model(pixel_values=images)
grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) * 1024
print(json.dumps({"estimate": estimate, "measured": grown}))
"""


def measure(recipe: str, batch: int, kind: str) -> dict:
    result = subprocess.run([sys.executable, "-c", _MEASURE, recipe, str(batch), kind], capture_output=True, text=True,
                            check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--recipes", nargs="+", action="extend")
    parser.add_argument("--eval-batch", type=int, default=1024)
    args = parser.parse_args()
    args.recipes = args.recipes or RECIPES  # a repeated --recipes adds up: the default only when none was given
    from modeling.recipes import resolve_recipe

    print(header("CIFAKE kit: memory estimate vs measured peak (bench/bench_memory.py)"))
    print("# growth of the peak resident memory of a fresh process over two steps (CPU); estimate from the meta device")
    print("\n" + table(["recipe", "step", "batch", "estimate", "measured", "estimate / measured"], []))
    for recipe in args.recipes:
        batch = resolve_recipe(recipe)[2]["batch_size"]
        for kind, size in (("train", batch), ("score", args.eval_batch)):
            row = measure(recipe, size, kind)
            ratio = row["estimate"] / max(row["measured"], 1)
            print(f"| {recipe} | {kind} | {size} | {row['estimate'] / 2**30:.2f} GB | {row['measured'] / 2**30:.2f} GB "
                  f"| {ratio:.2f} |", flush=True)


if __name__ == "__main__":
    main()
