"""`cifake demo` and the Space's `python app.py` as their users run them: separate processes, watched from outside."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from .conftest import call_api, free_port, upload

REPO = Path(__file__).resolve().parents[2]
META = {"meta": {"_type": "gradio.FileData"}}


@pytest.fixture
def start_demo(trained_model, tmp_path):
    """`start_demo(entry)`: the demo started by `entry` ("cifake demo" or "app.py") on a free port, with Gradio's
    uploads and the temporary folder in tmp_path; (process, URL, upload folder, temporary folder, console file)."""
    started = []

    def start(entry="cifake demo"):
        import httpx

        uploads, temp, console = tmp_path / "uploads", tmp_path / "tmp", tmp_path / "console.txt"
        temp.mkdir()
        port = free_port()
        env = dict(os.environ, GRADIO_TEMP_DIR=str(uploads), TMPDIR=str(temp), GRADIO_SERVER_PORT=str(port),
                   CIFAKE_MODEL=str(trained_model))
        command = ([sys.executable, "-m", "cifake_cli", "demo", "--model", str(trained_model), "--port", str(port)]
                   if entry == "cifake demo" else [sys.executable, str(REPO / "space" / "app.py")])
        with open(console, "w") as out:
            process = subprocess.Popen(command, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
        started.append(process)
        url = f"http://127.0.0.1:{port}/"
        deadline = time.monotonic() + 240
        while True:
            assert process.poll() is None, f"the demo stopped at start-up:\n{console.read_text()}"
            assert time.monotonic() < deadline, f"the demo did not start:\n{console.read_text()}"
            try:
                if httpx.get(f"{url}config", timeout=5).status_code == 200:
                    return process, url, uploads, temp, console
            except httpx.TransportError:
                pass
            time.sleep(0.2)

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.mark.parametrize("entry", ["cifake demo", "app.py"])
def test_sigterm_stops_the_demo_cleanly_and_removes_the_users_pictures(start_demo, tmp_path, entry):
    process, url, uploads, temp, console = start_demo(entry)
    picture = tmp_path / "holiday.png"
    Image.new("RGB", (40, 30), (1, 2, 3)).save(picture)
    stored = Path(upload(url, picture))
    assert stored.is_relative_to(uploads) and stored.read_bytes() == picture.read_bytes()
    event, data = call_api(url, "predict", [{"path": str(stored), **META}])
    assert event == "complete", data
    assert list(temp.glob("cifake-space-outputs-*/*.png"))  # the overlay and the view it returned
    process.send_signal(signal.SIGTERM)  # what kill, systemd and docker send
    assert process.wait(timeout=60) == 0, console.read_text()
    left = [p for p in uploads.rglob("*") if p.is_file() and (p.name == picture.name or p.stat().st_size)]
    assert left == []  # (gr.File leaves one empty temporary file per call: nothing of the user's)
    assert list(temp.glob("cifake-space-outputs-*")) == []
    assert "Traceback" not in console.read_text()


def test_bad_uploads_print_no_traceback_on_the_console(start_demo, tmp_path):
    process, url, _, _, console = start_demo()
    text = tmp_path / "notes.txt"
    text.write_text("not a picture")
    stored = upload(url, text)
    answers = {name: call_api(url, name, [{"path": stored, **META}]) for name in ("predict", "predict_pasted")}
    answers["not uploaded"] = call_api(url, "predict_pasted", [{"path": str(text)}])
    answers["nothing"] = call_api(url, "predict", [None])
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=60)
    output = console.read_text()
    assert "Traceback" not in output, output
    assert all(event == "error" for event, _ in answers.values()), answers
    assert all("'notes.txt' is not an image the CIFAKE kit can read" in answers[name][1]["error"]
               for name in ("predict", "predict_pasted"))
    assert "Upload an image, paste one, or pick an example first" in answers["nothing"][1]["error"]
    assert "notes.txt" not in answers["not uploaded"][1]["error"]  # refused, saying nothing of the file
    assert f"Refused to read {str(text)!r}: it is neither an upload nor one of the app's examples." in output
