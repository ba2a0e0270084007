import pytest

from cifake_kit.errors import CifakeError
from cifake_kit.hub import is_hub_id, load_failure, loading


@pytest.mark.parametrize("name, expected", [
    ("uoft-cs/cifar10", True), ("cifake", True), ("me/cifake-cnn", True),
    ("./cifake", False), ("/data/cifake", False), ("~/cifake", False), ("a/b/c", False),
    ("cifar-10-python.tar.gz", False), ("config.json", False), ("me/ci fake", False), ("", False),
])
def test_hub_ids_and_paths(name, expected):
    assert is_hub_id(name) is expected


def test_an_existing_folder_is_a_path_even_when_named_like_an_id(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "cifake").mkdir()
    assert is_hub_id("cifake") is False


def test_loading_failures_say_why_in_one_line(tmp_path):
    with pytest.raises(CifakeError, match=r"^Cannot load the model 'me/x' \(the Hub is offline \(HF_HUB_OFFLINE=1\) "
                                          r"and there is no such folder\)\. Pass a folder\.$"):
        with loading("the model", "me/x", "Pass a folder."):
            raise OSError("We couldn't connect to the Hub\nsecond line")
    # A local folder that exists: the library's own first line, not a word about the Hub.
    assert load_failure(ValueError("bad weights\nmore"), tmp_path) == "ValueError: bad weights"
    with pytest.raises(CifakeError, match="already one"):  # the kit's own errors pass through untouched
        with loading("the model", "me/x", "hint"):
            raise CifakeError("already one")


def test_online_failures_name_the_library_error(monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    why = load_failure(OSError("404 Client Error"), "me/missing")
    assert why == "there is no such folder, and the Hub could not provide it: OSError: 404 Client Error"
