"""Detection of genuine Stable Diffusion images: recipes, content controls, one detector, learning curve, Grad-CAM.

Task (bench/_sd.py): 791 genuine SD v1.x outputs from six public repositories (../shared/data/
generated-sd, 32x32) against 791 real CIFAR-10 test photos spread evenly over the ten classes (not
the photos of the GAN/DDPM task), one JPEG encoder for both halves, an 80/20 split stratified by
source and grouped by prompt (no test image has a same-prompt sibling in training).

Parts (--parts, default all):
  recipes   every recipe beside the hand-feature logistic baseline of bench/bench_detect.py: ROC AUC,
            AP, accuracy, train time; per source and per content type (photo-like / art SD images, each
            against every real test photo). With --more-real N, also cifake-forensic trained with N real
            photos per SD training image (CIFAR-10 test photos no other part uses; the test split the same).
  controls  did it learn the generator or the subject? (a) photo-like SD dogs against real dog photos
            only, bento170502's photo-like animals against real photos of their classes, scored by the
            best recipe; (b) the best recipe trained without the photo-like SD images, scored on them.
            The best recipe: the one with the highest validation ROC AUC (never chosen on the test split).
  sources   leave one source out: for each SD source of at least MIN_HELD_OUT images, the best recipe
            trained without it, scored on all its images (and on its photo-like ones, the kind of SD image
            a detector is judged on elsewhere) against the real test photos, beside the
            best model (which saw the source in training) on its test-split images: how well a detector
            carries to SD users, prompts and subjects it never saw.
  reduced   real photos larger than 32x32 (the few the kit's dependencies install) reduced as the SD images
            were and scored as `cifake predict` scores them: does reduction itself look like SD to the best model?
            Then, in two folds of the photos, the best recipe trained with one fold's reduced squares as REAL
            and scored on the other's.
  joint     one detector for every genuine fake: the best recipe on SD + the GAN/DDPM task together,
            per family (SD, GAN, DDPM) against the two specialists, on the same test images.
  curve     ROC AUC against the number of training fakes (real side subsampled to match), SD and
            GAN/DDPM tasks, seeds given by --seeds; a table and a PNG in --figures.
  gradcam   the paper's border-vs-centre Grad-CAM study (modeling.inference.explain.cam_mass_study) on the SD
            test split with the best model; its figure goes to --figures.

    python bench/bench_sd.py [--parts recipes gradcam controls sources reduced curve joint] [--seeds 0 1 2] [--json rows.json]
"""

from __future__ import annotations

import argparse
import json
import shutil
from collections import Counter
from pathlib import Path

import _sd
import numpy as np
from _bench import REPO, arguments, fmt, header, like_cifake, scratch, table, timed
from bench_detect import DEFAULT_RECIPES, check_recipes, fit, logistic_baseline, per_generator, recipe_run, recipe_spec

from cifake_kit.schema import generator_family

PARTS = ["recipes", "gradcam", "controls", "sources", "reduced", "curve", "joint"]  # run in this order
FALLBACK_BEST = "cifake-forensic"  # the best recipe when the recipes part is not run
CURVE_SIZES = [25, 50, 100, 200, 400, None]  # None: every training fake
CIFAKE_TRAIN_FAKES = 50_000


def auc(p_fake, fake_mask, real_mask) -> float | None:
    """ROC AUC of the `fake_mask` images (positives) against the `real_mask` ones; None if a side is empty."""
    from sklearn.metrics import roc_auc_score

    fake_mask, real_mask = np.asarray(fake_mask, bool), np.asarray(real_mask, bool)
    if not fake_mask.any() or not real_mask.any():
        return None
    both = fake_mask | real_mask
    return float(roc_auc_score(fake_mask[both], np.asarray(p_fake)[both]))


class Scored:
    """A model's P(FAKE) on a split, with each image's key, label, class name and generator."""

    def __init__(self, model_dir: Path, data: Path, split: str = "test"):
        from modeling.data import load_pixels
        from modeling.inference.core import load_model
        from modeling.scoring.evaluation import score

        net, processor = load_model(model_dir, batch_size=512)
        pixels = load_pixels(data, split, processor)
        _, self.p_fake = score(net, processor, pixels, batch_size=512)
        self.keys = _sd.pixel_keys(pixels)
        self.labels = pixels.labels.numpy()
        self.classes = _sd.class_names(pixels)
        self.generators = list(pixels.generator_ids or [None] * len(pixels))

    def p_by_key(self) -> dict[str, float]:
        return dict(zip(self.keys, self.p_fake.tolist()))


def content_scores(scored_keys, labels, p_fake, table_) -> dict:
    """ROC AUC of the photo-like and the art SD test images, each against every real test image."""
    masks = _sd.control_masks(scored_keys, labels, [None] * len(labels), table_)
    return {name: {"auc": auc(p_fake, m["fake"], m["real"]), "fake_images": m["fake_images"],
                   "real_images": m["real_images"]}
            for name, m in masks.items() if name.endswith("vs all real")}


# --- parts ----------------------------------------------------------------------------------------

def with_epochs(recipe: str, epochs: int | None) -> str:
    """`recipe`, or with `epochs`, its config JSON with that many training epochs."""
    return recipe_spec(recipe, training={"epochs": epochs}) if epochs else recipe


def part_recipes(ctx) -> dict:
    data, table_ = ctx["sd_data"], ctx["table"]
    runs = [(name, with_epochs(name, ctx["epochs"])) for name in ctx["recipes"]]
    runs += [(f"{FALLBACK_BEST}, {n} epochs", with_epochs(FALLBACK_BEST, n)) for n in ctx["extra_epochs"]]
    tasks = {name: data for name, _ in runs}  # the task each run trains on: the SD task, or it with more real photos
    for n in ctx["more_real"]:
        name = f"{FALLBACK_BEST}, {n} real photos per SD image"
        runs.append((name, with_epochs(FALLBACK_BEST, ctx["epochs"])))
        tasks[name] = _sd.import_rows(_sd.with_more_real(ctx["sd_rows"], ctx["shared"], n, more_real_skip(ctx)),
                                      ctx["work"] / f"sd-task-{n}x-real", intro="The SD task with more real training "
                                      "photos (bench/bench_sd.py --more-real).")
    scores = {}
    baseline = logistic_baseline(data, scores)
    baseline["content"] = content_scores(_sd.pixel_keys(scores["test"]), scores["labels"], scores["p_fake"], table_)
    baseline["spec"] = None
    rows = [baseline]
    for name, spec in runs:
        print(f"# training {name} on the SD task ...", flush=True)
        row = {**recipe_run(tasks[name], name, spec, ctx["models"]), "spec": spec, "task_as_is": tasks[name] == data}
        scored = Scored(row["model_dir"], tasks[name])  # the same test images on either task
        row["content"] = content_scores(scored.keys, scored.labels, scored.p_fake, table_)
        rows.append(row)
        print(f"#   {name}: ROC AUC {row['metrics']['roc_auc']:.4f} in {row['seconds']:.0f} s", flush=True)
    print("\n## SD task: recipes vs the hand-feature baseline\n")
    print(f"Test split: {int(np.sum(scores['labels'] == _sd.FAKE))} SD images, "
          f"{int(np.sum(scores['labels'] == _sd.REAL))} real photos. One run each, seed 0.\n")
    print(table(["detector", "epochs", "train s", "ROC AUC", "AP", "accuracy", "accuracy at threshold"],
                [[r["name"], "" if r["epochs"] is None else f"{r['epochs']:g}", f"{r['seconds']:.0f}",
                  fmt(r["metrics"]["roc_auc"], 4), fmt(r["metrics"]["average_precision"], 4),
                  fmt(r["metrics"]["accuracy"]), fmt(r["metrics"].get("accuracy_at_threshold"))] for r in rows]))
    print("\nPer source and per content type: ROC AUC of those SD test images against all real test photos.\n")
    body = per_generator(rows, lambda g: g.split(":", 1)[1])
    for name in rows[0]["content"]:
        body.append([f"**{name.replace(' vs all real', '')}**", rows[0]["content"][name]["fake_images"]]
                    + [fmt(r["content"][name]["auc"]) for r in rows])
    print(table(["source / content", "SD test images"] + [r["name"] for r in rows], body))
    candidates = [r for r in rows[1:] if r["task_as_is"]]  # the later parts train the best recipe on other tasks
    if candidates:  # chosen on validation: the test split only reports
        ctx["best"] = best = max(candidates, key=lambda r: r["validation_roc_auc"] or 0.0)
        m = best["metrics"]
        print(f"\nBest recipe (highest validation ROC AUC, {best['validation_roc_auc']:.4f}): {best['name']}: "
              f"test ROC AUC {m['roc_auc']:.4f} (target >= 0.99), {best['seconds'] / 60:.1f} min training "
              f"(target <= 15).")
    for row in rows[1:]:
        if not row["task_as_is"]:  # more real training photos: the same test split, another training set
            print(f"{row['name']}: test ROC AUC {row['metrics']['roc_auc']:.4f} (target >= 0.99), "
                  f"{row['seconds'] / 60:.1f} min training (target <= 15).")
    return {"rows": [{k: v for k, v in r.items() if k != "model_dir"} for r in rows]}


def best_model(ctx) -> dict:
    """The best recipe's model on the SD task: from the recipes part, or trained now (FALLBACK_BEST)."""
    if "best" not in ctx:
        print(f"# training {FALLBACK_BEST} on the SD task (the recipes part was not run) ...", flush=True)
        spec = with_epochs(FALLBACK_BEST, ctx["epochs"])
        ctx["best"] = {**fit(ctx["sd_data"], spec, ctx["models"] / "sd-best", FALLBACK_BEST), "spec": spec}
    return ctx["best"]


CONTROL_EXTRA_REAL = 100  # held-out real photos per control class, used by no task


def control_skip(ctx) -> int:
    """Where the controls' held-out photos start in the class-balanced pick: after the GAN/DDPM task's and
    the SD task's photos (len(sd_rows) counts the SD images too: a margin)."""
    return _sd.REAL_TOTAL + len(ctx["sd_rows"])


def more_real_skip(ctx) -> int:
    """Where --more-real's photos start: after the controls' (10 classes' worth, whichever they use)."""
    return control_skip(ctx) + 10 * CONTROL_EXTRA_REAL


def control_set(ctx) -> Path:
    """The SD test split plus CONTROL_EXTRA_REAL held-out real photos of each class the controls use
    (dog and bento's photo classes), photos no task of this bench trains or tests on, all as test."""
    table_ = ctx["table"]
    classes = {"dog"} | {i.cifar10_class for i in table_.values() if i.content == _sd.PHOTO and i.cifar10_class}
    extra = [_sd.Row(path, _sd.REAL, None, name, "test")
             for name, path in _sd.real_photos(ctx["shared"], 10 * CONTROL_EXTRA_REAL, control_skip(ctx)) if name in classes]
    if reused := {r.path for r in extra} & {r.path for r in ctx["sd_rows"]}:  # the skip counts whole picks only
        raise SystemExit(f"control photos {sorted(map(str, reused))[:3]} are in the SD task too: raise the skip.")
    rows = [r for r in ctx["sd_rows"] if r.split == "test"] + extra
    return _sd.import_rows(rows, ctx["work"] / "sd-controls", intro="Content controls of bench/bench_sd.py.")


def part_controls(ctx) -> dict:
    best = best_model(ctx)
    table_, rows = ctx["table"], ctx["sd_rows"]
    data = control_set(ctx)
    scored = Scored(best["model_dir"], data)
    masks = _sd.control_masks(scored.keys, scored.labels, scored.classes, table_)
    # (b) trained without any photo-like SD image, scored on them.
    print(f"# training {best['name']} on the SD task without its photo-like SD training images ...", flush=True)
    art_data = _sd.import_rows(_sd.art_only(rows, table_), ctx["work"] / "sd-art-only")
    art_run = fit(art_data, best["spec"], ctx["models"] / "sd-art-only")
    art = Scored(art_run["model_dir"], data)
    p_art = np.array([art.p_by_key()[k] for k in scored.keys])  # the same test images, in the same order
    out, body_a, body_b = {"a": [], "b": []}, [], []
    for name, m in masks.items():
        full_value, art_value = auc(scored.p_fake, m["fake"], m["real"]), auc(p_art, m["fake"], m["real"])
        sizes = {"fake_images": m["fake_images"], "real_images": m["real_images"]}
        out["a"].append({"control": name, "auc": full_value, **sizes})
        out["b"].append({"control": name, "auc_art_only": art_value, "auc_full": full_value, **sizes})
        body_a.append([name, *sizes.values(), fmt(full_value)])
        body_b.append([name, *sizes.values(), fmt(art_value), fmt(full_value)])
    print(f"\n## Content controls: generator or subject? ({best['name']})\n")
    print(f"(a) The best model on the SD test split, photo-like SD images against real photos of the same CIFAR-10 "
          f"classes only. Real photos: the test split's plus {CONTROL_EXTRA_REAL} held-out photos per class that no "
          f"model here saw (the 'all real' rows too).\n")
    print(table(["control", "SD images", "real photos", "ROC AUC"], body_a))
    n_train = sum(1 for r in rows if r.split == "train" and r.label == _sd.FAKE and table_[r.key].content == _sd.ART)
    print(f"\n(b) Trained on art-only SD ({n_train} training fakes) + the real training photos "
          f"({art_run['seconds']:.0f} s), against the full SD model, on the same test images.\n")
    print(table(["scored on", "SD images", "real photos", "trained on art-only SD", "trained on all SD"], body_b))
    shutil.rmtree(art_data, ignore_errors=True)
    shutil.rmtree(data, ignore_errors=True)
    return out


MIN_HELD_OUT = 20  # SD images of a source, at least, for its leave-one-out row


def part_sources(ctx) -> dict:
    best = best_model(ctx)
    rows = ctx["sd_rows"]
    seen = Scored(best["model_dir"], ctx["sd_data"])
    counts = Counter(r.generator_id for r in rows if r.label == _sd.FAKE)
    variants = [(best["name"], 1)] + [(f"{best['name']}, {n} real photos per SD image", n) for n in ctx["more_real"]]
    out, body = [], []
    for i, (source, images) in enumerate(sorted(counts.items())):
        if images < MIN_HELD_OUT:
            continue
        task = _sd.leave_source_out(rows, source)
        tested = {r.key for r in rows if r.split == "test" and r.generator_id == source}
        seen_fake = np.array([g == source for g in seen.generators]) & (seen.labels == _sd.FAKE)
        row = {"source": source, "images": images, "test_images": len(tested),
               "training_fakes": sum(r.split == "train" and r.label == _sd.FAKE for r in task),
               "seen_test_images": auc(seen.p_fake, seen_fake, seen.labels == _sd.REAL), "unseen": {}}
        for name, per_fake in variants:
            print(f"# training {name} without {source} ...", flush=True)
            more = _sd.with_more_real(task, ctx["shared"], per_fake, more_real_skip(ctx)) if per_fake > 1 else task
            data = _sd.import_rows(more, ctx["work"] / f"sd-without-{i}-{per_fake}",
                                   intro=f"The SD task without {source} in training (bench/bench_sd.py, part sources).")
            run = fit(data, best["spec"], ctx["models"] / f"sd-without-{i}-{per_fake}")
            unseen = Scored(run["model_dir"], data)
            fake, real = unseen.labels == _sd.FAKE, unseen.labels == _sd.REAL
            in_test = np.array([k in tested for k in unseen.keys])
            photo = content_scores(unseen.keys, unseen.labels, unseen.p_fake, ctx["table"])["photo-like SD vs all real"]
            row["real_images"], row["photo_images"] = int(real.sum()), photo["fake_images"]
            row["unseen"][name] = {"all": auc(unseen.p_fake, fake, real),
                                   "test_images": auc(unseen.p_fake, fake & in_test, real),
                                   "photo_like": photo["auc"], "seconds": run["seconds"]}
            shutil.rmtree(data, ignore_errors=True)
        out.append(row)
        body.append([source.split(":", 1)[1], images, row["training_fakes"]]
                    + [f"{fmt(row['unseen'][name]['all'])} / {fmt(row['unseen'][name]['test_images'])}"
                       for name, _ in variants]
                    + [f"{fmt(row['unseen'][best['name']]['photo_like'])} ({row['photo_images']})" if row["photo_images"]
                       else "none",
                       fmt(row["seen_test_images"])])
    left = sorted(s.split(":", 1)[1] for s, n in counts.items() if n < MIN_HELD_OUT)
    print(f"\n## Leave one source out: SD users, prompts and subjects never seen ({best['name']})\n")
    print(f"Each source held out of training (and of validation), scored against the "
          f"{out[0]['real_images'] if out else 0} real test photos: all its images / its test-split images only. "
          f"Beside it, the best model, which trained on the source's other images, on its test-split images. "
          f"Sources of fewer than {MIN_HELD_OUT} images ({', '.join(left) or 'none'}) get no row.\n")
    print(table(["held-out source", "its SD images", "training fakes left"]
                + [f"never seen: {name}" for name, _ in variants]
                + [f"never seen, its photo-like images only: {best['name']}", "seen in training"], body))
    for name, _ in variants:
        values = [r["unseen"][name]["all"] for r in out]
        photo = [r["unseen"][name]["photo_like"] for r in out if r["unseen"][name]["photo_like"] is not None]
        print(f"\nNever seen, {name}: mean ROC AUC {np.mean(values):.3f} over {len(values)} sources"
              + (f"; photo-like images only, {np.mean(photo):.3f} over the {len(photo)} sources that have some."
                 if photo else "."))
    return {"rows": out}


REDUCED_SQUARES = 50  # square crops of each large real photo that a model is scored on, its centre square first
REDUCED_TRAINING_SQUARES = 100  # square crops of each photo that joins training, in the part's second half


def p_fake_of_pictures(model_dir: Path, pictures: list) -> tuple[np.ndarray, float]:
    """P(FAKE) of PIL pictures as `cifake predict` and the Space score them (reduced to 32x32 by the model's
    processor, stored as its training data was), and the model's decision threshold."""
    from modeling.inference.core import as_stored_for, decision_threshold, load_model, score_images

    net, processor = load_model(model_dir, batch_size=512)
    scores = [score_images(net, processor, [as_stored_for(net, processor, p) for p in pictures[start:start + 512]])
              for start in range(0, len(pictures), 512)]
    return np.concatenate([s.numpy() for s in scores]), decision_threshold(net.config)


def reduction_probe(scored: Scored, p_squares: np.ndarray, threshold: float) -> dict:
    """How a model treats reduced real photos (P(FAKE) `p_squares`) beside the SD and CIFAR-10 test images
    of `scored`: the share of each called FAKE at `threshold`, and three ROC AUCs (first named: positive)."""
    real, fake = scored.labels == _sd.REAL, scored.labels == _sd.FAKE
    p = np.concatenate([p_squares, scored.p_fake])
    square = np.r_[np.ones(len(p_squares), bool), np.zeros(len(scored.p_fake), bool)]
    none = np.zeros(len(p_squares), bool)
    return {"threshold": threshold,
            "called_fake": {"CIFAR-10 test photos": float(np.mean(scored.p_fake[real] >= threshold)),
                            "SD test images": float(np.mean(scored.p_fake[fake] >= threshold)),
                            "reduced real photos": float(np.mean(p_squares >= threshold))},
            "roc_auc": {"SD vs CIFAR-10 photos": auc(scored.p_fake, fake, real),
                        "SD vs reduced real photos": auc(p, np.r_[none, fake], square),
                        "reduced real photos vs CIFAR-10 photos": auc(p, square, np.r_[none, real])}}


def part_reduced(ctx) -> dict:
    from modeling.inference.core import open_image

    best = best_model(ctx)
    photos = _sd.large_photos()
    print(f"\n## Real photos reduced to 32x32 as the SD images were: REAL or FAKE? ({best['name']})\n")
    if not photos:
        print("None of the large photos of bench/_sd.py LARGE_PHOTOS is installed: part skipped.")
        return {"rows": []}
    images = {name: open_image(path)[0] for name, path in photos.items()}
    squares = {name: _sd.square_crops(image, REDUCED_SQUARES) for name, image in images.items()}

    def scored_squares(model_dir: Path, names: list[str]) -> tuple[np.ndarray, float]:
        return p_fake_of_pictures(model_dir, [square for name in names for square in squares[name]])

    # (a) The best model, on every photo's squares.
    seen = Scored(best["model_dir"], ctx["sd_data"])
    p_squares, threshold = scored_squares(best["model_dir"], list(images))
    p_by_photo = dict(zip(images, np.split(p_squares, len(images))))
    rows = [{"photo": name, "size": "x".join(map(str, image.size)), "centre_square": float(p_by_photo[name][0]),
             "mean_p_fake": float(p_by_photo[name].mean()), "called_fake": float(np.mean(p_by_photo[name] >= threshold))}
            for name, image in images.items()]
    summary = reduction_probe(seen, p_squares, threshold)
    print(f"{len(photos)} real photos that the kit's dependencies install (bench/_sd.py LARGE_PHOTOS), "
          f"{REDUCED_SQUARES} squares of each (the centre square, then 30-100% of the shorter side at random places), "
          f"each reduced to 32x32 with PIL's bicubic filter, as the SD images were, and stored as CIFAKE's JPEG, "
          f"exactly as `cifake predict` does. Few scenes: a probe of what reduction does, not a photo "
          f"benchmark. Called FAKE: P(FAKE) >= the model's threshold {threshold:.2f}.\n")
    print(table(["photo", "size", "P(FAKE), centre square", "mean P(FAKE), squares", "squares called FAKE"],
                [[r["photo"], r["size"], fmt(r["centre_square"]), fmt(r["mean_p_fake"]), fmt(r["called_fake"])] for r in rows]))
    print("\n" + table(["images", "called FAKE"], [[k, fmt(v)] for k, v in summary["called_fake"].items()]))
    print("\n" + table(["ROC AUC (first named: positive)", "value"], [[k, fmt(v)] for k, v in summary["roc_auc"].items()]))

    # (b) Reduced real photos in training: two folds of the photos; each model learns from one fold's squares
    # (REAL, training split only) and is scored on the other fold's, beside the best model on the same squares.
    names = sorted(images)
    folds, trained = [names[0::2], names[1::2]], []
    for i, held_out in enumerate(folds):
        taught = [n for n in names if n not in held_out]
        print(f"# training {best['name']} with {REDUCED_TRAINING_SQUARES} reduced squares of each of "
              f"{', '.join(taught)} as REAL ...", flush=True)
        extra = _sd.reduced_photo_rows({n: photos[n] for n in taught}, ctx["work"] / f"reduced-photos-{i}",
                                       REDUCED_TRAINING_SQUARES, seed=1)  # a fold never scores the photos it taught
        data = _sd.import_rows(ctx["sd_rows"] + extra, ctx["work"] / f"sd-task-reduced-{i}",
                               intro="The SD task with reduced real photos in training (bench/bench_sd.py, part reduced).")
        run = fit(data, best["spec"], ctx["models"] / f"sd-reduced-{i}")
        base = np.concatenate([p_by_photo[name] for name in held_out])
        trained.append({"taught": taught, "held_out": held_out, "seconds": run["seconds"],
                        "without": reduction_probe(seen, base, threshold),
                        "with": reduction_probe(Scored(run["model_dir"], data), *scored_squares(run["model_dir"], held_out))})
        shutil.rmtree(data, ignore_errors=True)
        shutil.rmtree(ctx["work"] / f"reduced-photos-{i}", ignore_errors=True)
    print(f"\nWith reduced real photos in training: {REDUCED_TRAINING_SQUARES} squares of each photo of one fold join "
          f"the REAL training images; the other fold's photos, never seen, are scored on their {REDUCED_SQUARES} squares "
          f"each. Same test split, one seed. The ROC AUCs need no threshold; the shares called FAKE use each "
          f"model's own, chosen on its validation split (which holds some of the taught squares).\n")
    body = []
    for fold in trained:
        for arm, label in (("without", "the SD task as it is"), ("with", f"+ squares of {', '.join(fold['taught'])}")):
            r = fold[arm]
            body.append([", ".join(fold["held_out"]), label, fmt(r["roc_auc"]["SD vs reduced real photos"]),
                         fmt(r["roc_auc"]["SD vs CIFAR-10 photos"]), fmt(r["threshold"], 2),
                         fmt(r["called_fake"]["reduced real photos"]), fmt(r["called_fake"]["CIFAR-10 test photos"])])
    print(table(["scored photos", "trained on", "SD vs their squares (ROC AUC)", "SD vs CIFAR-10 photos (ROC AUC)",
                 "threshold", "their squares called FAKE", "CIFAR-10 photos called FAKE"], body))
    return {"rows": rows, **summary, "trained": trained}


def genuine_task(ctx) -> tuple[Path, list[_sd.Row]]:
    if "gan_task" not in ctx:
        ctx["gan_task"] = _sd.genuine_rows(ctx["shared"], ctx["work"] / "gan-task")
    return ctx["gan_task"]


def gan_specialist(ctx) -> dict:
    """The best recipe trained on the GAN/DDPM task: its `fit` row."""
    if "gan" not in ctx:
        data, _ = genuine_task(ctx)
        best = best_model(ctx)
        print(f"# training {best['name']} on the GAN/DDPM task ...", flush=True)
        ctx["gan"] = fit(data, best["spec"], ctx["models"] / "gan-specialist")
    return ctx["gan"]


JOINT_OWN = "joint, each family's own score"


def part_joint(ctx) -> dict:
    best = best_model(ctx)
    _, gan_rows = genuine_task(ctx)
    gan = gan_specialist(ctx)
    joint_data = _sd.import_rows(ctx["sd_rows"] + gan_rows, ctx["work"] / "joint-task",
                                 intro="SD + GAN/DDPM, the joint task of bench/bench_sd.py.")
    print(f"# training {best['name']} on SD + GAN/DDPM together ...", flush=True)
    joint = fit(joint_data, best["spec"], ctx["models"] / "joint")
    models = {"joint (SD + GAN/DDPM)": joint["model_dir"], "SD-only": best["model_dir"],
              "GAN/DDPM-only": gan["model_dir"]}
    scores = {name: Scored(path, joint_data) for name, path in models.items()}
    first = scores["joint (SD + GAN/DDPM)"]
    p = {name: np.array([s.p_by_key()[k] for k in first.keys]) for name, s in scores.items()}
    families = np.array([generator_family(g) if label == _sd.FAKE else "REAL"
                         for g, label in zip(first.generators, first.labels)], dtype=object)
    real = first.labels == _sd.REAL
    # With a family head (the forensic recipe's), the joint model's report scores each family by its own score too.
    own = {row["family"]: row.get("roc_auc_vs_real_own_score") for row in joint["metrics"].get("per_family") or []}
    out = []
    for family in ("Stable Diffusion", "GAN", "DDPM", "all"):
        fake = (families != "REAL") if family == "all" else (families == family)
        out.append({"family": family, "fake_images": int(fake.sum()), "real_images": int(real.sum()),
                    **{name: auc(p[name], fake, real) for name in models}, JOINT_OWN: own.get(family)})
    seconds = {"joint": joint["seconds"], "SD-only": best["seconds"], "GAN/DDPM-only": gan["seconds"]}
    print(f"\n## One detector for every genuine fake ({best['name']})\n")
    print(f"Joint test split ({int(real.sum())} real photos: the SD task's and the GAN/DDPM task's), each family "
          f"against all of them. Train time: " + ", ".join(f"{k} {v:.0f} s" for k, v in seconds.items()) + ".\n")
    print("By P(FAKE), except the last column: the joint model's score for that family alone, P(family | family or "
          "REAL), where its recipe names the families (a family head).\n")
    print(table(["family", "fake test images"] + list(models) + [JOINT_OWN],
                [[r["family"], r["fake_images"]] + [fmt(r[name]) for name in list(models) + [JOINT_OWN]] for r in out]))
    shutil.rmtree(joint_data, ignore_errors=True)
    return {"rows": out, "seconds": seconds}


def part_curve(ctx) -> dict:
    best = best_model(ctx)
    tasks = {"SD": ctx["sd_rows"], "GAN/DDPM": genuine_task(ctx)[1]}
    points = []
    for task, rows in tasks.items():
        total = sum(1 for r in rows if r.split == "train" and r.label == _sd.FAKE)
        for size in ctx["curve_sizes"]:
            for seed in ctx["seeds"]:
                if size is None and seed != ctx["seeds"][0] and not ctx["curve_all_seeds"]:
                    continue  # every fake: the subsets are equal, only the training seed would differ
                n = total if size is None else min(size, total)
                if size is None and seed == 0:  # trained already: the same rows, the same recipe, seed 0
                    run = best if task == "SD" else gan_specialist(ctx)
                    value, note = run["metrics"]["roc_auc"], f"the {task} model"
                else:
                    folder = ctx["work"] / f"curve-{task.replace('/', '-')}-{n}-{seed}"
                    _sd.import_rows(_sd.curve_subset(rows, size, seed), folder, seed=seed)
                    run = fit(folder, best["spec"], ctx["models"] / folder.name, seed=seed)
                    value, note = run["metrics"]["roc_auc"], f"{run['seconds']:.0f} s"
                    shutil.rmtree(folder, ignore_errors=True)
                    shutil.rmtree(run["model_dir"], ignore_errors=True)
                points.append({"task": task, "fakes": n, "seed": seed, "roc_auc": value, "seconds": run["seconds"]})
                print(f"#   curve {task} n={n} seed {seed}: ROC AUC {value:.4f} ({note})", flush=True)
    summary = curve_summary(points)
    print(f"\n## Learning curve ({best['name']}): ROC AUC against training fakes\n")
    print("Real training photos subsampled to the same number; the full test split of each task; mean +- sd over "
          "seeds (the 'every fake' point: one seed, the subsets being equal).\n")
    print(table(["task", "training fakes", "seeds", "ROC AUC mean", "sd", "min", "train s (mean)"],
                [[s["task"], s["fakes"], s["runs"], fmt(s["mean"], 4), fmt(s["sd"], 4), fmt(s["min"], 4),
                  f"{s['seconds']:.0f}"] for s in summary]))
    figure = plot_curve(summary, ctx["figures"] / "sd_learning_curve.png", best["name"])
    print(f"\nFigure: {shown(figure)}")
    for task in tasks:
        print(extrapolation(summary, task))
    return {"points": points, "summary": summary}


def shown(path: Path) -> Path:
    return path.relative_to(REPO) if path.is_relative_to(REPO) else path


def curve_summary(points: list[dict]) -> list[dict]:
    out = []
    for task in dict.fromkeys(p["task"] for p in points):
        for fakes in sorted({p["fakes"] for p in points if p["task"] == task}):
            mine = [p for p in points if p["task"] == task and p["fakes"] == fakes]
            values = [p["roc_auc"] for p in mine]
            out.append({"task": task, "fakes": fakes, "runs": len(values), "mean": float(np.mean(values)),
                        "sd": float(np.std(values, ddof=1)) if len(values) > 1 else None, "min": float(np.min(values)),
                        "seconds": float(np.mean([p["seconds"] for p in mine]))})
    return out


def power_law(summary: list[dict], task: str) -> tuple[float, float] | None:
    """(a, b) of log(1 - AUC) = a + b log(fakes), fitted on the points from 50 fakes on; None if too few."""
    points = [(s["fakes"], max(1 - s["mean"], 1e-4)) for s in summary if s["task"] == task and s["fakes"] >= 50]
    if len(points) < 3:
        return None
    x, y = np.log([p[0] for p in points]), np.log([p[1] for p in points])
    b, a = np.polyfit(x, y, 1)
    return float(a), float(b)


def extrapolation(summary: list[dict], task: str) -> str:
    fitted = power_law(summary, task)
    if fitted is None:
        return f"{task}: too few curve points to say anything about {CIFAKE_TRAIN_FAKES:,} training fakes."
    a, b = fitted
    last = [s for s in summary if s["task"] == task][-1]
    if b > -1e-9:  # a flat curve fits a slope of about -1e-17, not 0
        return (f"{task}: ROC AUC does not rise with more fakes over this range ({last['fakes']} fakes: {last['mean']:.3f});"
                f" nothing can be read off for CIFAKE's {CIFAKE_TRAIN_FAKES:,}.")
    guess = 1 - float(np.exp(a + b * np.log(CIFAKE_TRAIN_FAKES)))
    return (f"{task}: 1 - AUC falls about x{2 ** -b:.2f} per doubling of the fakes (a power law fitted from 50 fakes "
            f"up, {last['fakes']} fakes: {last['mean']:.3f}). Carried on to CIFAKE's {CIFAKE_TRAIN_FAKES:,} training "
            f"fakes it would give ROC AUC ~{guess:.4f}: a guess, since curves of this kind flatten and CIFAKE's own "
            f"fakes come from one SD v1.4 prompt set, not these sources.")


def plot_curve(summary: list[dict], path: Path, model: str) -> Path:
    from modeling.plotting import pyplot, save

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=120)
    for task, colour in (("SD", "tab:red"), ("GAN/DDPM", "tab:blue")):
        mine = [s for s in summary if s["task"] == task]
        if not mine:
            continue
        x = [s["fakes"] for s in mine]
        y = np.array([s["mean"] for s in mine])
        sd = np.array([s["sd"] or 0.0 for s in mine])
        ax.plot(x, y, "o-", color=colour, label=f"{task} task")
        ax.fill_between(x, y - sd, np.minimum(y + sd, 1), color=colour, alpha=0.15)
    ax.set(xscale="log", xlabel="training fakes (as many real photos)", ylabel="test ROC AUC")
    ax.set_title(f"Learning curve, {model} (mean +- sd over seeds)", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend()
    path.parent.mkdir(parents=True, exist_ok=True)
    save(fig, path)
    return path


def part_gradcam(ctx) -> dict:
    from modeling.inference.explain import cam_mass_study

    best = best_model(ctx)
    out = ctx["work"] / "gradcam"
    result = cam_mass_study(best["model_dir"], ctx["sd_data"], split="test", sample=100_000, output_dir=out)
    figure = ctx["figures"] / "sd_cam_mass.png"
    figure.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(out / "cam_mass.png", figure)
    print(f"\n## Grad-CAM: border vs centre on the SD test split ({best['name']}, {result['images']} images)\n")
    print(f"Centre: the {result['centre']} (a uniform map puts {result['uniform_centre_share']:.0%} of its mass there; "
          f"centre ratio < 1: the evidence sits on the border). {result['empty_maps']} empty maps left out.\n")
    print(table(["group", "images", "border share", "centre share", "centre ratio"],
                [[name.replace("FAKE", "SD (FAKE)"), g["images"], fmt(g["border_share"]), fmt(g["centre_share"]),
                  fmt(g["centre_ratio"], 2)] for name, g in result["groups"].items()]))
    if result["per_generator"]:
        print("\nPer SD source (FAKE test images):\n")
        print(table(["source", "images", "border share", "centre share", "called FAKE"],
                    [[g["generator_id"].split(":", 1)[1], g["images"], fmt(1 - g["centre_share"]),
                      fmt(g["centre_share"]), fmt(g["called_fake"])] for g in result["per_generator"]]))
    print(f"\nFigure: {shown(figure)}")
    return result


def curve_size(value: str) -> int | None:
    """A --curve-sizes value: a number of training fakes (1 or more), or 'all' (None)."""
    if value == "all":
        return None
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"{value!r} is no number of training fakes: give 1 or more, or 'all'")
    return int(value)


def real_per_fake(value: str) -> int:
    """A --more-real value: real training photos per SD training image, 2 or more."""
    if not value.isdigit() or int(value) < 2:
        raise argparse.ArgumentTypeError(f"{value!r} is no number of real photos per SD image: give 2 or more")
    return int(value)


def main():
    parser = arguments(__doc__)
    parser.add_argument("--parts", nargs="+", action="extend", choices=PARTS)
    parser.add_argument("--recipes", nargs="+", action="extend")
    parser.add_argument("--extra-epochs", nargs="*", action="extend", type=int, default=[],
                        help=f"also train {FALLBACK_BEST} with these epoch counts (extra rows of the recipes table)")
    parser.add_argument("--more-real", nargs="*", action="extend", type=real_per_fake, default=[], metavar="N",
                        help=f"also train {FALLBACK_BEST} with N real photos per SD training image (extra rows of the "
                             f"recipes table; the test split is the same)")
    parser.add_argument("--seeds", nargs="+", action="extend", type=int, help="seeds of the learning curve")
    parser.add_argument("--curve-all-seeds", action="store_true",
                        help="train the 'every fake' curve point for every seed too (only the training seed differs)")
    parser.add_argument("--curve-sizes", nargs="+", action="extend", type=curve_size,
                        help="training fakes per curve point ('all': every one)")
    parser.add_argument("--epochs", type=int, help="override every recipe's epochs (quick checks; not for results)")
    parser.add_argument("--figures", type=Path, default=REPO / "bench" / "figures")
    parser.add_argument("--json", type=Path, help="also write every row to this JSON file")
    args = parser.parse_args()
    # Repeated list flags add up (action="extend"), so their defaults are filled in only when none was given.
    for name, default in (("parts", PARTS), ("recipes", DEFAULT_RECIPES), ("seeds", [0, 1, 2]),
                          ("curve_sizes", CURVE_SIZES)):
        if getattr(args, name) is None:
            setattr(args, name, list(default))
    check_recipes([(name, name) for name in args.recipes])  # refused in one line, before anything loads,
    _sd.sd_images(args.shared)  # as is a missing ../shared/data/generated-sd
    like_cifake()
    import torch

    work = scratch("sd")
    print(header("CIFAKE kit: detection of genuine Stable Diffusion images (bench/bench_sd.py)"))
    print(f"# {torch.get_num_threads()} threads | parts: {' '.join(args.parts)} | curve fakes "
          f"{' '.join(str(n or 'all') for n in args.curve_sizes)}, seeds {' '.join(map(str, args.seeds))} | "
          f"FAKE is the positive class", flush=True)
    sd_data, sd_rows, table_ = _sd.build_sd_task(args.shared, work / "sd-task")
    ctx = {**vars(args), "work": work, "models": work / "models", "sd_data": sd_data, "sd_rows": sd_rows, "table": table_}
    photo = sum(1 for i in table_.values() if i.content == _sd.PHOTO)
    print(f"# SD task: {sum(r.label == _sd.FAKE for r in sd_rows)} SD images ({photo} photo-like, "
          f"{len(table_) - photo} art) vs {sum(r.label == _sd.REAL for r in sd_rows)} real photos; "
          f"train {sum(r.split == 'train' for r in sd_rows)}, test {sum(r.split == 'test' for r in sd_rows)}", flush=True)
    results = {}
    for part in PARTS:  # in this order: later parts reuse the best model
        if part in args.parts:
            took, results[part] = timed(globals()[f"part_{part}"], ctx)
            print(f"\n# part {part}: {took / 60:.1f} min", flush=True)
            if args.json:
                args.json.write_text(json.dumps(results, indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()
