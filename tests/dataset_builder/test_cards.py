"""Dataset cards as the Hub reads them: the task, the source dataset, the paper, and a licence that
follows where the images came from."""

import shutil

import numpy as np
import pytest
from huggingface_hub import DatasetCard
from PIL import Image as PILImage

from dataset_builder import licences
from dataset_builder.build import import_folders


@pytest.mark.parametrize("text, found", [
    ("MIT License\n\nPermission is hereby granted, free of charge", ["mit"]),
    ("Copyright (c) 2020 someone\n\nPermission is hereby granted, free of charge, to any person", ["mit"]),
    ("            DO WHAT THE FUCK YOU WANT TO PUBLIC LICENSE", ["wtfpl"]),
    ("Licensed under the Apache License, Version 2.0", ["apache-2.0"]),
    ("Released under Apache-2.", ["apache-2.0"]),
    ("CreativeML Open RAIL-M", ["creativeml-openrail-m"]),
    ("CreativeML Open RAIL++-M License", ["openrail++"]),
    ("Images: CC BY-NC 4.0", ["cc-by-nc-4.0"]),
    ("Licensed CC BY-SA 4.0", ["cc-by-sa-4.0"]),
    ("Boost Software License - Version 1.0\nPermission is hereby granted, free of charge", ["bsl-1.0"]),
    ("GNU GENERAL PUBLIC LICENSE\n                       Version 3, 29 June 2007", ["gpl-3.0"]),
    ("Neither the name of the copyright holder nor the names of its contributors may be used to endorse",
     ["bsd-3-clause"]),
    ("a commit, a submitted sample", []),  # no MIT inside other words
    ("Bilder mit Katzen", []),  # German "with"
    ("the MIT-Adobe FiveK photos", []),  # a dataset's name, not a licence
])
def test_licence_signs_in_text(text, found):
    assert licences.from_text(text) == found


def test_a_table_beside_several_sources_gives_each_its_own_row():
    table = ("| folder | licence |\n|---|---|\n| `gan-a` | MIT, (c) someone |\n| `ddpm-b` | WTFPL v2 |\n"
             "| `gan-mit` | MIT |\n")
    assert licences.of_source([("SOURCES.md", False, table)], "gan-a") == ("mit",)
    assert licences.of_source([("SOURCES.md", False, table)], "ddpm-b") == ("wtfpl",)
    assert licences.of_source([("SOURCES.md", False, table)], "gan") == ("unknown",)  # `gan` is no word in `gan-mit`
    assert licences.of_source([("README.md", True, "Apache License 2.0"), ("SOURCES.md", False, table)], "gan-a") == (
        "apache-2.0", "mit")
    readme = "Unlike the code (MIT), the images are CC BY-NC 4.0."
    assert licences.of_source([("README.md", True, readme)], "x") == ("cc-by-nc-4.0", "mit")  # both, for a person
    assert licences.of_source([("README.md", True, readme), ("LICENSE", True, "CC BY-NC 4.0")], "x") == (
        "cc-by-nc-4.0",)  # a licence file outranks prose
    assert licences.card_value([("REAL", ("unknown",)), ("FAKE a", ("mit",)), ("FAKE b", ("mit",))]) == ["mit", "unknown"]
    assert licences.card_value([("both", ("mit",))]) == "mit"


def test_generator_licences():
    assert licences.of_generator("CompVis/stable-diffusion-v1-4", "demo") == ("creativeml-openrail-m",)
    assert licences.of_generator("stabilityai/stable-diffusion-xl-base-1.0", "demo") == ("openrail++",)
    assert licences.card_value([("REAL", licences.CIFAR10),
                                ("FAKE", licences.of_generator("stabilityai/stable-diffusion-xl-base-1.0", "d"))]) == [
        "openrail++", "unknown"]
    assert licences.of_generator("demo", "demo") == ("mit",)
    assert licences.of_generator("someone/unknown-pipeline", "demo") == ("unknown",)


def card(folder) -> DatasetCard:
    return DatasetCard.load(folder / "README.md", repo_type="dataset")


def test_a_built_dataset_states_its_parts_licences_task_and_source(built_dataset, build_kwargs, tmp_path):
    data = card(built_dataset).data
    assert data.license == "unknown"  # CIFAR-10 states none, nor does the test's pipeline folder
    assert data.task_ids == ["multi-class-image-classification"] and data.task_categories == ["image-classification"]
    assert data.source_datasets == ["extended|cifar10"]
    text = card(built_dataset).text
    assert "https://arxiv.org/abs/2303.14126" in text
    assert "- REAL, CIFAR-10 photos: `unknown`" in text and "- FAKE, output of `local:tiny-sd`: `unknown`" in text

    from dataset_builder.build import build_dataset

    pipeline = tmp_path / "tiny-sd"
    shutil.copytree(build_kwargs["generator"], pipeline)
    (pipeline / "README.md").write_text("---\nlicense: apache-2.0\n---\n# A pipeline with a model card\n")
    build_dataset(output_dir=tmp_path / "out", **{**build_kwargs, "generator": str(pipeline), "per_class": 1,
                                                  "test_per_class": 1})
    assert card(tmp_path / "out").data.license == ["apache-2.0", "unknown"]


def _noise(folder, count, seed):
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for i in range(count):  # noise, not the output of any generator: these tests are about the card
        PILImage.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    return folder


def test_an_imported_dataset_takes_each_sources_licence_from_its_texts(tmp_path):
    photos, gan = _noise(tmp_path / "photos", 5, 1), _noise(tmp_path / "gan", 5, 2)
    (gan / "LICENSE").write_text("Licensed under the Apache License, Version 2.0 (the \"License\");")
    import_folders([photos], [f"g={gan}"], output_dir=tmp_path / "out")
    data = card(tmp_path / "out").data
    assert data.license == ["apache-2.0", "unknown"] and data.source_datasets is None
    assert "- FAKE `gan`: `apache-2.0`" in card(tmp_path / "out").text
    shutil.rmtree(tmp_path / "out")
    (photos / "LICENSE").write_text("MIT License")
    (gan / "LICENSE").write_text("MIT License")
    import_folders([photos], [f"g={gan}"], output_dir=tmp_path / "out")
    assert card(tmp_path / "out").data.license == "mit"


def test_the_demo_card_lists_its_generators_licences_and_cifar10_as_source(tmp_path):
    from dataset_builder.demo import build_demo

    build_demo(tmp_path / "demo")
    data = card(tmp_path / "demo").data
    # Stable Diffusion's sources, chainer-gan-lib & co (and vincegmz), CIFAR-10, w86763777's DDPM
    assert data.license == ["creativeml-openrail-m", "mit", "unknown", "wtfpl"]
    assert data.source_datasets == ["extended|cifar10"]
    text = card(tmp_path / "demo").text
    assert "- FAKE `ddpm-w86763777`: `wtfpl`" in text
    assert "- FAKE `sd-JoshCLWren`: `creativeml-openrail-m`" in text and "- FAKE `sd-vincegmz`: `mit`" in text
