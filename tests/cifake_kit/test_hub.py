import pytest

from cifake_kit.errors import CifakeError
from cifake_kit.hub import is_hub_id, load_failure, loading


@pytest.mark.parametrize("name, expected", [
    ("uoft-cs/cifar10", True), ("cifake", True), ("me/cifake-cnn", True),
    ("./cifake", False), ("/data/cifake", False), ("~/cifake", False), ("a/b/c", False),
    ("cifar-10-python.tar.gz", False), ("config.json", False), ("me/ci fake", False), ("", False),
])
def test_hub_ids_and_paths(name, expected, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a clone that ran the README's main job holds ./cifake: a path, then
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


def test_an_unreachable_hub_means_offline_at_once(monkeypatch, capsys):
    import os
    import socket

    from huggingface_hub import constants

    from cifake_cli import main
    from cifake_kit import hub

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(hub, "_OFFLINE_NOTE", hub._OFFLINE_NOTE)
    import urllib.request

    monkeypatch.setattr(urllib.request, "getproxies", lambda: {})

    def no_network(address, timeout=None):
        raise socket.gaierror(-2, "Name or service not known")

    monkeypatch.setattr(hub.socket, "create_connection", no_network)
    tried = []  # any connection after the probe: the libraries' requests, each retried for ~30 s in all

    def look_up(host, *args, **kwargs):
        tried.append(host)
        raise socket.gaierror(-2, "Name or service not known")

    def connect(self, address):
        tried.append(address)
        raise OSError("no network in this test")

    monkeypatch.setattr(socket, "getaddrinfo", look_up)
    monkeypatch.setattr(socket.socket, "connect", connect)
    assert main(["evaluate", "--model", "me/some-model"]) == 1
    assert tried == []  # offline at once: no request was even tried
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0] == ("cifake: the Hub cannot be reached (huggingface.co: Name or service not known): working offline, "
                      "with cached copies only.")
    assert err[1].startswith("cifake evaluate: error: Cannot load the model 'me/some-model' (the Hub is offline (cannot "
                             "be reached: huggingface.co: Name or service not known) and there is no such folder)")
    assert constants.HF_HUB_OFFLINE is True and os.environ["HF_HUB_OFFLINE"] == "1"  # children inherit it


def test_local_work_never_probes_the_hub(monkeypatch, tmp_path):
    from huggingface_hub import constants

    from cifake_cli import main
    from cifake_kit import hub

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(hub.socket, "create_connection", lambda *a, **k: pytest.fail("probed the Hub"))
    assert main(["evaluate", "--model", "./nowhere"]) == 1
    assert main(["build", "--demo", "--steps", "3"]) == 1


@pytest.mark.parametrize("answer, message", [
    ("401", r"the Hub rejects this token \(401\)"),
    ("read", "this token is read-only"),
    ("unreachable", r"the Hub cannot be reached \(ConnectError\)"),
])
def test_a_push_asks_the_hub_about_the_token_first(monkeypatch, answer, message):
    import httpx
    import huggingface_hub
    from huggingface_hub import constants
    from huggingface_hub.errors import HfHubHTTPError

    from cifake_kit.errors import CifakeError
    from cifake_kit.hub import push_token

    def whoami(self, token=None, **kwargs):
        request = httpx.Request("GET", "https://huggingface.co/api/whoami-v2")
        if answer == "401":
            raise HfHubHTTPError("401 Client Error", response=httpx.Response(401, request=request))
        if answer == "unreachable":
            raise httpx.ConnectError("Name or service not known", request=request)
        return {"auth": {"type": "access_token", "accessToken": {"role": "read"}}}

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(huggingface_hub.HfApi, "whoami", whoami)
    with pytest.raises(CifakeError, match=message) as raised:
        push_token("me/cifake", token="hf_secret_value")
    assert "hf_secret_value" not in str(raised.value)
