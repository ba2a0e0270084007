"""Prompt families and the per-image seed rule. The paper builds each class's prompts on its name without
listing them; these are photographic descriptions varied as CIFAR-10's photos vary. Image `i` of a class
uses prompt `i mod len(family)`: every prompt equally often, reproducibly.
"""

from __future__ import annotations

from cifake_kit.schema import CIFAR10_CLASSES, SPLITS

PROMPT_FAMILIES: dict[str, list[str]] = {
    "airplane": [
        "a photograph of an airplane",
        "a photograph of an airplane flying in the sky",
        "a photograph of a passenger jet on a runway",
        "a photograph of a small propeller plane",
    ],
    "automobile": [
        "a photograph of a car",
        "a photograph of a car parked on a street",
        "a photograph of a sedan on a road",
        "a photograph of a sports car",
    ],
    "bird": [
        "a photograph of a bird",
        "a photograph of a bird perched on a branch",
        "a photograph of a bird standing on the ground",
        "a photograph of a bird in flight",
    ],
    "cat": [
        "a photograph of a cat",
        "a photograph of a cat sitting indoors",
        "a photograph of a cat lying on the grass",
        "a close-up photograph of a cat's face",
    ],
    "deer": [
        "a photograph of a deer",
        "a photograph of a deer in a forest",
        "a photograph of a deer standing in a field",
        "a photograph of a stag with antlers",
    ],
    "dog": [
        "a photograph of a dog",
        "a photograph of a dog sitting on grass",
        "a photograph of a puppy indoors",
        "a close-up photograph of a dog's face",
    ],
    "frog": [
        "a photograph of a frog",
        "a photograph of a frog on a leaf",
        "a photograph of a toad on the ground",
        "a photograph of a frog in a pond",
    ],
    "horse": [
        "a photograph of a horse",
        "a photograph of a horse in a field",
        "a photograph of a horse with a rider",
        "a photograph of a brown horse standing",
    ],
    "ship": [
        "a photograph of a ship",
        "a photograph of a ship at sea",
        "a photograph of a boat in a harbour",
        "a photograph of a cargo ship",
    ],
    "truck": [
        "a photograph of a truck",
        "a photograph of a truck on a highway",
        "a photograph of a fire truck",
        "a photograph of a pickup truck parked outside",
    ],
}

# Seeds never collide in a build (`index` < 10,000); a regeneration after a blank moves 1,000,000 on.
_SPLIT_OFFSET = {split: n * 100_000 for n, split in enumerate(SPLITS)}


def prompt_for(class_idx: int, index: int) -> str:
    family = PROMPT_FAMILIES[CIFAR10_CLASSES[class_idx]]
    return family[index % len(family)]


def seed_for(base_seed: int, split: str, class_idx: int, index: int, attempt: int = 0) -> int:
    """The torch seed of generated image `index` of `class_idx` in `split`."""
    return base_seed + 1_000_000 * attempt + _SPLIT_OFFSET[split] + 10_000 * class_idx + index
