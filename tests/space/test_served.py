"""The app as users meet it: served on 127.0.0.1, driven by gradio_client and by headless Chromium."""

import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "space" / "examples"
ARTIFACTS = REPO / "test-artifacts"


def test_client_gets_prediction_overlay_and_view(served_app):
    from gradio_client import Client, handle_file

    client = Client(served_app, verbose=False)
    probabilities, overlay, view, notes = client.predict(handle_file(str(EXAMPLES / "real-cifar10-ship-0000.jpg")),
                                                         api_name="/predict")
    assert probabilities["label"] in {"FAKE", "REAL"}
    scores = {c["label"]: c["confidence"] for c in probabilities["confidences"]}
    assert set(scores) == {"FAKE", "REAL"} and sum(scores.values()) == pytest.approx(1.0, abs=1e-6)
    assert Image.open(overlay).size == (256, 256) and Image.open(view).size == (256, 256)
    assert "The model says" in notes


def test_client_sees_the_error_message_for_a_non_image(served_app, tmp_path):
    from gradio_client import Client, handle_file

    text = tmp_path / "notes.txt"
    text.write_text("not a picture")
    client = Client(served_app, verbose=False)
    with pytest.raises(Exception, match="is not an image the CIFAKE kit can read"):
        client.predict(handle_file(str(text)), api_name="/predict")
    # The app is still alive for the next user.
    result = client.predict(handle_file(str(EXAMPLES / "real-cifar10-cat-0000.jpg")), api_name="/predict")
    assert result[0]["label"] in {"FAKE", "REAL"}


def test_the_paste_route_names_a_file_that_is_no_image(served_app, tmp_path):
    from gradio_client import Client, handle_file

    text = tmp_path / "clip.png"
    text.write_text("not a picture")
    client = Client(served_app, verbose=False)
    with pytest.raises(Exception, match="is not an image the CIFAKE kit can read"):  # was: an error with no message
        client.predict(handle_file(str(text)), api_name="/predict_pasted")
    result = client.predict(handle_file(str(EXAMPLES / "fake-began-chainer-gan-lib.png")), api_name="/predict_pasted")
    assert result[0]["label"] in {"FAKE", "REAL"}


def test_uploads_over_the_limit_are_refused_unkept_and_the_rest_go_with_the_server(detector, tmp_path, monkeypatch):
    import httpx

    from space.app import MAX_UPLOAD_BYTES

    from .conftest import serve

    uploads = tmp_path / "gradio-uploads"
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(uploads))
    demo, url = serve(detector)

    def stored():  # besides the app's own examples, which Gradio caches when the app is built
        return sorted(p.name for p in uploads.rglob("*") if p.is_file() and not (EXAMPLES / p.name).is_file())

    try:
        big = tmp_path / "big.png"
        with open(big, "wb") as handle:
            handle.truncate(MAX_UPLOAD_BYTES + 1)
        with open(big, "rb") as handle:
            refused = httpx.post(f"{url}gradio_api/upload", files={"files": ("big.png", handle)}, timeout=60)
        assert refused.status_code == 413 and "maximum allowed size" in refused.text
        assert stored() == []  # nothing of it stays
        picture = tmp_path / "mine.png"
        Image.new("RGB", (40, 30), (1, 2, 3)).save(picture)
        with open(picture, "rb") as handle:
            kept = httpx.post(f"{url}gradio_api/upload", files={"files": ("mine.png", handle)}, timeout=60)
        assert kept.status_code == 200 and stored() == ["mine.png"]
    finally:
        demo.close()
    assert stored() == []  # users' pictures do not outlive the server


def server_paths(tmp_path):
    """Paths on the server that no client uploaded: a picture (which the app could classify), missing ones and
    existing non-images, a folder, and links and `..` that point out of the upload folder from inside it."""
    from gradio.utils import get_upload_folder

    secret = tmp_path / "secret.png"
    Image.new("RGB", (32, 32), (200, 10, 10)).save(secret)
    notes = tmp_path / "notes.txt"
    notes.write_text("not a picture")
    inside = Path(get_upload_folder()) / f"cifake-test-{os.getpid()}-{tmp_path.name}"
    inside.mkdir(parents=True)
    (inside / "secret.png").symlink_to(secret)
    (inside / "passwd.png").symlink_to("/etc/passwd")
    return inside, {
        "a picture": str(secret),
        "a missing picture": str(tmp_path / "missing.png"),
        "a missing system file": "/etc/cifake-no-such-shadow",
        "a text file": str(notes),
        "a system file": "/etc/passwd",
        "a folder": str(tmp_path),
        "a link to a picture, in the upload folder": str(inside / "secret.png"),
        "a link to a system file, in the upload folder": str(inside / "passwd.png"),
        "the picture by way of ..": os.path.join(get_upload_folder(), os.path.relpath(secret, get_upload_folder())),
    }


NAMES = ["secret", "missing", "shadow", "notes", "passwd"]  # of the paths above: no answer may name them


def endpoints(url):
    """(api_name, number of inputs) of every function a client may call, from the served app's own config."""
    import httpx

    config = httpx.get(f"{url}config", timeout=60).json()
    return [(fn["api_name"], len(fn["inputs"])) for fn in config["dependencies"]
            if fn.get("backend_fn") and fn.get("api_name") and fn.get("api_visibility") != "private"]


def test_no_endpoint_reads_a_file_on_the_server_that_a_client_names(served_app, tmp_path, monkeypatch):
    from gradio_client import Client

    from space import app

    from .conftest import call_api, upload

    opened = []
    real_open = app.open_image
    monkeypatch.setattr(app, "open_image", lambda path: opened.append(str(path)) or real_open(path))
    inside, paths = server_paths(tmp_path)
    try:
        names = endpoints(served_app)
        assert {"predict", "predict_pasted"} <= {name for name, _ in names}
        for name, inputs in names:
            for meta in ({}, {"meta": {"_type": "gradio.FileData"}}):
                answers = {}
                for kind, path in paths.items():
                    event, data = call_api(served_app, name, [{"path": path, **meta}] * inputs)
                    assert event == "error", (name, meta, kind, data)
                    answers[kind] = data.get("error")
                assert len(set(answers.values())) == 1, (name, meta, answers)  # one answer, whatever is there
                assert not any(word in str(answers["a picture"]) for word in NAMES + [tmp_path.name]), answers
        client = Client(served_app, verbose=False)
        for name in client.view_api(print_info=False, return_format="dict")["named_endpoints"]:
            answers = {}
            for kind, path in paths.items():
                with pytest.raises(Exception) as refused:
                    client.predict({"path": path}, api_name=name)
                answers[kind] = str(refused.value)
            assert len(set(answers.values())) == 1 and not any(word in answers["a picture"] for word in NAMES), answers
        assert opened == []  # nothing the clients named was ever opened
        # The same picture, uploaded, is classified by both routes: what was refused was where it lay.
        uploaded = {"path": upload(served_app, Path(paths["a picture"])), "meta": {"_type": "gradio.FileData"}}
        for name in ("predict", "predict_pasted"):
            event, data = call_api(served_app, name, [uploaded])
            assert event == "complete" and data[0]["label"] in {"FAKE", "REAL"}, (name, data)
    finally:
        shutil.rmtree(inside)


def test_the_served_headline_is_the_verdict_at_the_models_threshold(contrary):
    from gradio_client import Client, handle_file

    from .conftest import serve

    detector, example, verdict = contrary
    demo, url = serve(detector)
    try:
        shown, _, _, notes = Client(url, verbose=False).predict(handle_file(str(example)), api_name="/predict")
    finally:
        demo.close()
    scores = {c["label"]: c["confidence"] for c in shown["confidences"]}
    assert shown["label"] == verdict and set(scores) == {"FAKE", "REAL"} and scores[verdict] < 0.5
    assert f"The model says **{verdict}**" in notes


def test_a_real_failure_is_logged_once_with_its_traceback_and_gradio_prints_none(served_app, monkeypatch, capfd,
                                                                                  caplog):
    import logging

    from gradio_client import Client, handle_file

    from space import app

    def broken(*args, **kwargs):
        raise RuntimeError("a bug in the model code")

    monkeypatch.setattr(app, "explain_images", broken)
    capfd.readouterr()
    with caplog.at_level(logging.ERROR, logger="cifake.space"):
        with pytest.raises(Exception, match=r"could not be classified \(RuntimeError\)"):
            Client(served_app, verbose=False).predict(handle_file(str(EXAMPLES / "real-cifar10-cat-0000.jpg")),
                                                      api_name="/predict")
    logged = [r for r in caplog.records if r.name == "cifake.space"]
    assert len(logged) == 1 and logged[0].exc_info[0] is RuntimeError  # the log: once, with the traceback
    assert "Traceback" not in capfd.readouterr().err  # and not a second time, nor the gr.Error's chain


@pytest.mark.slow
def test_concurrent_users_are_queued_and_all_served(served_app):
    from gradio_client import Client, handle_file

    examples = sorted(EXAMPLES.glob("*.*g"))

    def one_user(path):
        return Client(served_app, verbose=False).predict(handle_file(str(path)), api_name="/predict")[0]["label"]

    with ThreadPoolExecutor(6) as pool:
        labels = list(pool.map(one_user, examples))
    assert len(labels) == len(examples) and set(labels) <= {"FAKE", "REAL"}


@pytest.fixture(scope="session")
def chromium():
    """Debian's chromium and chromedriver (`.ci/run` installs them; the tests never install anything)."""
    found = shutil.which("chromium"), shutil.which("chromedriver")
    if not all(found):
        pytest.skip("needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)")
    return found


@pytest.fixture
def browser(chromium, tmp_path):
    os.environ.setdefault("SE_OFFLINE", "true")  # selenium must not look for drivers online
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = chromium[0]
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-dev-shm-usage", f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1300,1150"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(chromium[1]), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


@pytest.mark.slow
def test_the_page_renders_and_classifies_an_upload(served_app, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(served_app)
    wait = WebDriverWait(browser, 60)
    wait.until(lambda d: "DDPM sample" in d.find_element(By.TAG_NAME, "body").text)  # examples drawn last
    page = browser.find_element(By.TAG_NAME, "body").text
    for text in ("CIFAKE: real or AI-generated?", "REAL / FAKE", "Grad-CAM for the predicted class",
                 "What the model saw (32x32, enlarged)", "genuine Stable Diffusion images", "Model:"):
        assert text in page, text
    upload = browser.find_element(By.CSS_SELECTOR, "input[type=file]")
    upload.send_keys(str(EXAMPLES / "real-cifar10-airplane-0000.jpg"))
    wait.until(lambda d: "The model says" in d.find_element(By.TAG_NAME, "body").text)
    wait.until(lambda d: len([i for i in d.find_elements(By.TAG_NAME, "img") if "file=" in (i.get_attribute("src") or "")]) >= 2)
    ARTIFACTS.mkdir(exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / "space-prediction.png"))
    assert Image.open(ARTIFACTS / "space-prediction.png").size[0] >= 1000


@pytest.mark.slow
def test_the_page_shows_an_error_for_a_non_image(served_app, browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    text = tmp_path / "notes.txt"
    text.write_text("not a picture")
    browser.get(served_app)
    wait = WebDriverWait(browser, 60)
    wait.until(lambda d: "Upload an image file" in d.find_element(By.TAG_NAME, "body").text)
    browser.find_element(By.CSS_SELECTOR, "input[type=file]").send_keys(str(text))
    wait.until(lambda d: "is not an image the CIFAKE kit can read" in d.find_element(By.TAG_NAME, "body").text)
    ARTIFACTS.mkdir(exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / "space-error.png"))
    assert "Traceback" not in browser.find_element(By.TAG_NAME, "body").text


@pytest.mark.slow
def test_clicking_an_example_classifies_it(served_app, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(served_app)
    wait = WebDriverWait(browser, 60)
    wait.until(lambda d: d.find_elements(By.XPATH, "//button[contains(., 'CIFAR-10 test photo (cat)')]"))
    browser.find_element(By.XPATH, "//button[contains(., 'CIFAR-10 test photo (cat)')]").click()
    wait.until(lambda d: "The model says" in d.find_element(By.TAG_NAME, "body").text)
    wait.until(lambda d: len([i for i in d.find_elements(By.TAG_NAME, "img") if "file=" in (i.get_attribute("src") or "")]) >= 2)
