import json

import numpy as np
import pytest
from PIL import Image

from modeling.inference.explain import cam_mass_study, centre_share, explain


def test_centre_share_measures_where_the_mass_is():
    maps = np.zeros((4, 32, 32), np.float32)
    maps[0, 8:24, 8:24] = 1.0  # all in the centre
    maps[1] = 1.0  # uniform
    maps[2, :2, :] = 1.0  # top border only
    shares = centre_share(maps)
    assert shares[:3].tolist() == pytest.approx([1.0, 0.25, 0.0])
    assert np.isnan(shares[3])  # an empty map has no share


def test_explain_writes_overlays_and_a_grid(trained_model, tmp_path, sample_photos):
    paths = []
    for i in range(3):
        paths.append(tmp_path / f"photo{i}.png")
        Image.fromarray(sample_photos[0][i]).resize((96, 96)).save(paths[-1])
    grid = explain(paths, trained_model, output_dir=tmp_path / "out", all_classes=True)
    assert grid.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert written == sorted(["gradcam-grid.png"] + [f"photo{i}.{kind}.png" for i in range(3)
                                                      for kind in ("gradcam-FAKE", "gradcam-REAL", "input32")])
    assert Image.open(tmp_path / "out" / "photo0.gradcam-REAL.png").size == (256, 256)


def test_the_border_versus_centre_study(trained_model, toy_dataset, tmp_path):
    result = cam_mass_study(trained_model, data=str(toy_dataset), split="test", sample=60, output_dir=tmp_path)
    assert result["images"] == 60 and result["uniform_centre_share"] == 0.25
    groups = result["groups"]
    assert set(groups) == {"FAKE correct", "FAKE wrong", "REAL correct", "REAL wrong"}
    assert sum(g["images"] for g in groups.values()) + result["empty_maps"] == 60
    for numbers in groups.values():
        if numbers["images"]:
            assert 0 <= numbers["centre_share"] <= 1
            assert numbers["border_share"] == pytest.approx(1 - numbers["centre_share"])
            assert numbers["centre_ratio"] == pytest.approx(numbers["centre_share"] / 0.25)
    fakes = groups["FAKE correct"]["images"] + groups["FAKE wrong"]["images"]
    per_generator = {row["generator_id"]: row for row in result["per_generator"]}
    assert set(per_generator) == {"toy-pattern:even", "toy-pattern:odd"}
    assert sum(row["images"] for row in per_generator.values()) == fakes
    for row in per_generator.values():
        assert 0 <= row["centre_share"] <= 1 and 0 <= row["called_fake"] <= 1
    assert json.loads((tmp_path / "cam_mass.json").read_text()) == result
    assert (tmp_path / "cam_mass.png").read_bytes()[:4] == b"\x89PNG"


def test_two_images_of_one_name_keep_a_picture_each(trained_model, tmp_path, sample_photos):
    for i, folder in enumerate(("a", "b")):
        (tmp_path / folder).mkdir()
        Image.fromarray(sample_photos[0][i]).save(tmp_path / folder / "x.png")
    explain([tmp_path / "a" / "x.png", tmp_path / "b" / "x.png"], trained_model, output_dir=tmp_path / "out")
    inputs = [Image.open(tmp_path / "out" / name) for name in ("x.input32.png", "x-2.input32.png")]
    assert list(inputs[0].getdata()) != list(inputs[1].getdata())  # each image its own picture, none overwritten


def test_explain_writes_only_where_its_own_pictures_are(trained_model, tmp_path, sample_photos):
    from cifake_kit.errors import CifakeError

    photo = tmp_path / "photo.png"
    Image.fromarray(sample_photos[0][0]).save(photo)
    afile = tmp_path / "a-file"
    afile.write_text("x")
    with pytest.raises(CifakeError, match="is a file, not a folder"):
        explain([photo], trained_model, output_dir=afile)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("keep")
    with pytest.raises(CifakeError, match=r"already holds other files \(thesis.tex\); nothing was written"):
        explain([photo], trained_model, output_dir=mine)
    with pytest.raises(CifakeError, match=r"already holds other files \(thesis.tex\)"):
        cam_mass_study(trained_model, data="unused", output_dir=mine)
    assert [p.name for p in mine.iterdir()] == ["thesis.tex"]
    out = tmp_path / "out"
    explain([photo], trained_model, output_dir=out)
    other = tmp_path / "other.png"
    Image.fromarray(sample_photos[0][1]).save(other)
    explain([other], trained_model, output_dir=out)  # more pictures join the earlier ones
    assert {"photo.input32.png", "other.input32.png"} <= {p.name for p in out.iterdir()}
