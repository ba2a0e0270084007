"""`cifake build`, `import-kaggle`, `import-folder`, `push-dataset`: the dataset side (dataset_builder).
Parse, call one `dataset_builder` function (imported in the handler), say where the output went."""

from __future__ import annotations

import argparse
import sys

from cifake_kit.errors import CifakeError
from dataset_builder.features import FULL_PER_CLASS, IMAGE_FORMATS, IMPORT_ENCODINGS  # plain data: free to import

from .flags import add_data, add_output_dir, command

BUILD_EXAMPLE = """\
examples:
  cifake build --demo
      offline, seconds: 840 real CIFAR-10 photos + 393 genuine Stable Diffusion v1.x images + 420 images of
      14 GANs and DDPMs trained on CIFAR-10, bundled with the kit (sources and licences per file)
  cifake build --cifar10 ~/data/cifar-10-python.tar.gz --per-class 100
      1,200 images: 100/20 per class and label, FAKE from CompVis/stable-diffusion-v1-4
  accelerate launch -m cifake_cli build
      the paper's full 120,000 images, generation split across every GPU
"""

IMPORT_EXAMPLE = """\
example:
  cifake import-kaggle ~/Downloads/cifake --output-dir ./cifake
      SRC is the unzipped Kaggle download: it holds train/REAL, train/FAKE, test/REAL, test/FAKE
"""

FOLDER_EXAMPLE = """\
examples:
  cifake import-folder --real ~/data/cifar10-test-jpeg --fake sngan=~/samples/sngan ddpm=~/samples/ddpm
      every image below each folder; generator_id sngan / ddpm on the FAKE rows; 20% of each drawn into test
  cifake import-folder --real ./photos --fake ./genimage-subset --test-fraction 1 --output-dir ./genimage-test
      a test-only dataset, to score a model on another generator: cifake evaluate --cross-data ./genimage-test
"""

PUSH_EXAMPLE = """\
example:
  cifake push-dataset your-name/cifake --data ./cifake --private
      the token comes from `hf auth login` or HF_TOKEN and is never printed
"""


def register(subparsers) -> None:
    build = command(
        subparsers, "build", "build CIFAKE from CIFAR-10 and a diffusers text-to-image pipeline",
        "Build CIFAKE: CIFAR-10 photos as REAL, images from a text-to-image pipeline as FAKE, into a folder that "
        "datasets.load_dataset opens. Defaults give the paper's full dataset. An interrupted build resumes when the "
        "same command is run again.",
        BUILD_EXAMPLE, run_build,
    )
    add_output_dir(build, "cifake", "dataset folder to write (default: ./cifake)")
    build.add_argument("--demo", action="store_true",
                       help="offline demo: import the genuine real and generated images bundled with the kit "
                            "(takes only --output-dir and --overwrite)")
    build.add_argument("--cifar10", help="CIFAR-10: Hub id, cifar-10-python.tar.gz or its folder, or 'bundled-sample' "
                       "(60 photos shipped with the kit) (default: uoft-cs/cifar10)")
    build.add_argument("--generator", help="diffusers pipeline: Hub id, local folder, or 'tiny-random' "
                       "(default: CompVis/stable-diffusion-v1-4)")
    build.add_argument("--per-class", type=int, help=f"train images per class and label (default: {FULL_PER_CLASS['train']})")
    build.add_argument("--test-per-class", type=int, help="test images per class and label (default: a fifth of --per-class)")
    build.add_argument("--steps", type=int, dest="num_inference_steps", help="denoising steps (default: 50)")
    build.add_argument("--guidance", type=float, dest="guidance_scale", help="classifier-free guidance scale (default: 7.5)")
    build.add_argument("--batch-size", type=int, help="images per pipeline call (default: 8)")
    build.add_argument("--seed", type=int, help="base seed; image seeds follow from it (default: 0)")
    build.add_argument("--image-format", choices=IMAGE_FORMATS,
                       help="encoder for both labels: jpeg = CIFAKE's quality-75 tables (default), png = lossless")
    build.add_argument("--resolution", type=int, help="generation size in pixels (default: the pipeline's own, 512 for SD v1.4)")
    build.add_argument("--shard-size", type=int, help="images per resumable shard (default: 256)")
    build.add_argument("--overwrite", action="store_true", help="replace a finished dataset in --output-dir, or restart an "
                       "unfinished build")

    kaggle = command(
        subparsers, "import-kaggle", "convert the published CIFAKE folders into the dataset folder",
        "Convert the published CIFAKE download (train|test / REAL|FAKE JPEG folders) into the dataset folder, keeping "
        "the original JPEG bytes. Unreadable files and links leaving SRC are skipped and listed at the end.",
        IMPORT_EXAMPLE, run_import_kaggle,
    )
    kaggle.add_argument("source", metavar="SRC", help="the unzipped Kaggle download")
    add_output_dir(kaggle, "cifake", "dataset folder to write (default: ./cifake)")
    kaggle.add_argument("--overwrite", action="store_true", help="replace a dataset this kit wrote in --output-dir")

    folder = command(
        subparsers, "import-folder", "import folders of real photos and of generated images as a dataset",
        "Import every image below folders of real photos (--real) and of generated images (--fake NAME=DIR: NAME "
        "becomes the generator_id of those rows; DIR alone uses the folder's name) into the dataset folder. JPEG, "
        "PNG, WebP, BMP and GIF files are taken; others, unreadable files and links are skipped and listed. Splits: "
        "the sources' train/ and test/ folders, or a test share drawn per label and generator. By default both halves "
        "go through one encoder (CIFAKE's JPEG; files that already are 32x32 CIFAKE JPEGs are kept as they are). "
        "An interrupted import resumes when the same command is run again.",
        FOLDER_EXAMPLE, run_import_folder,
    )
    folder.add_argument("--real", nargs="+", action="extend", metavar="DIR", required=True, help="folders of real photos")
    folder.add_argument("--fake", nargs="+", action="extend", metavar="[NAME=]DIR", required=True,
                        help="folders of generated images, each with its generator's name (default: the folder's)")
    add_output_dir(folder, "cifake", "dataset folder to write (default: ./cifake)")
    folder.add_argument("--test-fraction", type=float, default=0.2,
                        help="share of each label and generator drawn into test where a source has no train/ and "
                             "test/ folders (default: 0.2; 1 makes a test-only dataset)")
    folder.add_argument("--seed", type=int, default=0, help="seed of the test draw (default: 0)")
    folder.add_argument("--encoder", choices=IMPORT_ENCODINGS, default="cifake-jpeg",
                        help="cifake-jpeg: one JPEG encoder for both halves, CIFAKE's own 32x32 JPEGs kept (default); "
                             "png: lossless for both; keep: every file's bytes as they are (warns if the halves differ)")
    folder.add_argument("--overwrite", action="store_true", help="replace a dataset this kit wrote in --output-dir")

    push = command(
        subparsers, "push-dataset", "push a built dataset folder to the Hugging Face Hub with its card",
        "Push the dataset folder to a Hub dataset repo with push_to_hub, card included.",
        PUSH_EXAMPLE, run_push_dataset,
    )
    push.add_argument("repo_id", metavar="REPO_ID", help="Hub dataset repo, e.g. your-name/cifake")
    add_data(push, help="dataset folder to push (default: ./cifake)")
    push.add_argument("--private", action="store_true", help="create the repo as private")


def run_build(args: argparse.Namespace) -> None:
    # Every option but --output-dir and --overwrite; unset (None) unless given, so that --demo can refuse them
    # and build_dataset's own defaults apply.
    generation = {"cifar10": "--cifar10", "generator": "--generator", "per_class": "--per-class",
                  "test_per_class": "--test-per-class", "num_inference_steps": "--steps", "guidance_scale": "--guidance",
                  "batch_size": "--batch-size", "seed": "--seed", "image_format": "--image-format",
                  "resolution": "--resolution", "shard_size": "--shard-size"}
    if args.demo:
        given = [flag for name, flag in generation.items() if getattr(args, name) is not None]
        if given:
            raise CifakeError(f"--demo imports the bundled images and generates nothing: drop {', '.join(given)}, or "
                              f"drop --demo to build with a generator.")
        from dataset_builder.demo import build_demo

        _print_import(build_demo(args.output_dir, overwrite=args.overwrite))
        return
    from dataset_builder.build import build_dataset

    options = {name: getattr(args, name) for name in generation if getattr(args, name) is not None}
    report = build_dataset(output_dir=args.output_dir, overwrite=args.overwrite, **options)
    if report is not None:  # None on the non-main processes of `accelerate launch`
        _print_done(report)
        if report.resumed:
            print(f"  resumed: {report.resumed} FAKE images were already made by an earlier run")
        print(f"  safety-checker blanks regenerated: {report.blank_regenerations}")


def run_import_kaggle(args: argparse.Namespace) -> None:
    from dataset_builder.build import import_kaggle

    _print_import(import_kaggle(args.source, output_dir=args.output_dir, overwrite=args.overwrite))


def run_import_folder(args: argparse.Namespace) -> None:
    from dataset_builder.build import import_folders

    _print_import(import_folders(args.real, args.fake, output_dir=args.output_dir, test_fraction=args.test_fraction,
                                 seed=args.seed, encoder=args.encoder, overwrite=args.overwrite), by_source=True)


def run_push_dataset(args: argparse.Namespace) -> None:
    from dataset_builder.hub import push_dataset

    url = push_dataset(args.data, args.repo_id, private=args.private)
    print(f"pushed {args.data} to {url}")


def _print_import(report, by_source: bool = False) -> None:
    """An import's counts (`by_source`: each source's too), then its notes and skipped files on stderr."""
    _print_done(report)
    for label, name, generator, counts in report.sources if by_source else ():
        split_counts = " + ".join(f"{n:,} {split}" for split, n in counts.items())
        print(f"  {label} {name}{f' ({generator})' if generator else ''}: {split_counts or 'nothing imported'}")
    for note in report.notes:
        print(f"note: {note}", file=sys.stderr)
    if report.problems:
        count = len(report.problems)
        print(f"\n{count} {'file was' if count == 1 else 'files were'} not imported:", file=sys.stderr)
        for path, why in report.problems:
            print(f"  {path}: {why}", file=sys.stderr)


def _print_done(report) -> None:
    counts = "; ".join(f"{split}: {c['REAL']} REAL + {c['FAKE']} FAKE" for split, c in report.counts.items())
    print(f"wrote {report.output_dir}/ ({counts})")
    print(f"  open it with: datasets.load_dataset({str(report.output_dir)!r})")
