import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from datasets import load_dataset

from dataset_builder.cli import main, make_parser

CIFAKE = [sys.executable, "-m", "dataset_builder.cli"]


def run(args, cwd=None, **env):
    return subprocess.run(CIFAKE + args, cwd=cwd, capture_output=True, text=True, env={**os.environ, **env}, timeout=300)


def test_help_imports_nothing_heavy():
    code = (
        "import sys, contextlib, io\n"
        "from dataset_builder.cli import main\n"
        "for argv in (['--help'], ['build', '--help'], ['import-kaggle', '--help'], ['push-dataset', '--help'],\n"
        "             ['train', '--help'], ['evaluate', '--help'], ['sweep', '--help'], ['push-model', '--help'],\n"
        "             ['explain', '--help'], ['demo', '--help'], ['push-space', '--help']):\n"
        "    with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n"
        "        main(argv)\n"
        "heavy = [m for m in ('torch', 'diffusers', 'gradio', 'datasets', 'transformers') if m in sys.modules]\n"
        "print(heavy)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize("command", [None, "build", "import-kaggle", "push-dataset", "train", "evaluate", "sweep",
                                     "push-model", "explain", "demo", "push-space"])
def test_every_help_ends_with_a_real_example(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(([command] if command else []) + ["--help"])
    assert exit_info.value.code == 0
    lines = [line for line in capsys.readouterr().out.strip().splitlines() if line.strip()]
    examples = [line for line in lines if line.strip().startswith(("cifake ", "accelerate launch"))]
    assert examples, lines
    if command:
        assert any(line.strip().startswith(f"cifake {command}") for line in examples)


def test_parser_keeps_the_documented_flag_names():
    args = make_parser().parse_args(
        "build --out o --cifar10 c --generator g --per-class 3 --test-per-class 1 --steps 2 "
        "--guidance 1.5 --batch-size 2 --seed 5 --image-format png".split()
    )
    assert (args.out, args.cifar10, args.generator, args.per_class, args.test_per_class) == ("o", "c", "g", 3, 1)
    assert (args.num_inference_steps, args.guidance_scale, args.batch_size, args.seed, args.image_format) == (2, 1.5, 2, 5, "png")
    args = make_parser().parse_args(["push-dataset", "me/cifake", "--data", "d", "--private"])
    assert (args.repo_id, args.data, args.private) == ("me/cifake", "d", True)


def readme_main_job() -> list[list[str]]:
    """The cifake commands of README.md's main-job line, in order (after the install steps)."""
    import re
    import shlex

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    line = next(b for b in re.findall(r"```bash\n(.*?)\n```", readme, re.S) if "cifake build --demo" in b)
    steps = [shlex.split(part) for part in line.split("&&")]
    return [step[1:] for step in steps if step[0] == ".venv/bin/cifake"]


def test_readme_main_job_runs_offline_end_to_end(tmp_path):
    import socket
    import time
    import urllib.request

    commands = readme_main_job()
    assert [c[0] for c in commands] == ["build", "train", "evaluate", "demo"]
    outputs = {}
    for args in commands[:-1] + commands[:1]:  # and the build once more: the line can be run again
        result = run(args, cwd=tmp_path)
        assert result.returncode == 0, (args, result.stderr[-3000:])
        outputs[args[0]] = result.stdout
    # The last step serves the app until stopped: start it, fetch the page, stop it.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(CIFAKE + commands[-1], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, env={**os.environ, "GRADIO_SERVER_PORT": str(port)})
    try:
        deadline, page = time.monotonic() + 180, ""
        while time.monotonic() < deadline and server.poll() is None and "CIFAKE" not in page:
            try:
                page = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5).read().decode()
            except OSError:
                time.sleep(1)
        assert "CIFAKE" in page, server.stdout.read() if server.poll() is not None else "no page"
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert "wrote cifake/ (train: 40 REAL + 40 FAKE; test: 20 REAL + 20 FAKE)" in outputs["build"]
    assert "saved the model to cifake-model/" in outputs["train"] and "test accuracy" in outputs["evaluate"]
    report = json.loads((tmp_path / "cifake-model" / "report" / "report.json").read_text())
    assert report["generators"] == ["cifake-kit/tiny-random-sd"] and report["split"] == "test"
    assert (tmp_path / "cifake-model" / "eval" / "cifake-test" / "robustness.md").is_file()
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        ds = load_dataset("cifake")
    finally:
        os.chdir(cwd)
    assert {split: len(ds[split]) for split in ds} == {"train": 80, "test": 40}
    assert ds["train"].features["label"].names == ["FAKE", "REAL"]
    assert set(ds["train"]["generator_id"]) == {"cifake-kit/tiny-random-sd", None}
    assert "demonstration build" in (tmp_path / "cifake" / "README.md").read_text()


@pytest.mark.parametrize(
    "args, message",
    [
        (["build", "--demo", "--per-class", "0"], "cifake build: error: --per-class must be at least 1, got 0."),
        (["build", "--demo", "--cifar10", "missing/cifar-10-python.tar.gz"], "does not exist. Pass --cifar10 PATH"),
        (["import-kaggle", "nowhere"], "is not a folder. Unzip the CIFAKE download"),
        (["push-dataset", "me/cifake", "--data", "nowhere"], "is not a dataset folder written by this kit"),
        (["train", "--config", "conv9x9"], "cifake train: error: Unknown config 'conv9x9'"),
        (["train", "--data", "nowhere"], "cifake train: error: Cannot open the dataset 'nowhere'"),
        (["evaluate", "nowhere"], "cifake evaluate: error: Cannot load the model 'nowhere'"),
        (["sweep", "--topologies", "conv4x4"], "cifake sweep: error: Unknown topologies ['conv4x4']"),
        (["push-model", "nowhere", "me/x"], "cifake push-model: error: 'nowhere' is not a saved model"),
        (["explain", "--model", "m"], "cifake explain: error: Nothing to explain: give IMAGE paths, or --data DIR"),
        (["explain", "x.png", "--model", "nowhere"], "cifake explain: error: Cannot load the model 'nowhere'"),
        (["demo", "--model", "nowhere"], "cifake demo: error: Cannot load the model 'nowhere'"),
        (["push-space", "me/demo", "--model", "./local-folder"], "cifake push-space: error: --model './local-folder' is not a Hub model id"),
    ],
)
def test_bad_input_is_one_line_and_exit_1(tmp_path, args, message):
    result = run(args, cwd=tmp_path)
    assert result.returncode == 1
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert len([line for line in result.stderr.splitlines() if "error:" in line]) == 1


def test_debug_variable_shows_the_traceback(tmp_path):
    result = run(["import-kaggle", "nowhere"], cwd=tmp_path, CIFAKE_DEBUG="1")
    assert result.returncode != 0
    assert "Traceback" in result.stderr and "CifakeError" in result.stderr


def test_allocator_tuning_can_be_turned_off(monkeypatch):
    from dataset_builder.model_commands import keep_freed_memory

    monkeypatch.setenv("CIFAKE_MALLOC_TUNING", "0")
    assert keep_freed_memory() is False
    monkeypatch.delenv("CIFAKE_MALLOC_TUNING")
    import platform

    if platform.system() == "Linux" and platform.libc_ver()[0] == "glibc":
        assert keep_freed_memory() is True
