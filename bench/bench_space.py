"""The Space under load on loopback: latency of one full request, and requests/s with concurrent clients.

A full request is what a user's upload costs, done the way the page does it over Gradio's HTTP
API: upload the photo, call /predict, read the result from the event stream, fetch the overlay
and the 32x32 view. The app decodes, predicts and runs Grad-CAM in between. The same request
through `gradio_client` is timed too (it polls, which adds its own wait). The app runs in this
process on 127.0.0.1 with its queue (one job at a time, as deployed). p50 / p95 over --requests
sequential calls after a warm-up; then 1, 4 and 8 concurrent clients, each phase bounded by
--per-phase requests and --seconds.

Model: the paper's best CNN with its initial weights (speed does not depend on training). Images:
CIFAR-10 test photos from ../shared/data, enlarged to 512x512 like a user's picture.

    python bench/bench_space.py [--requests 100] [--per-phase 200] [--seconds 30]
"""

from __future__ import annotations

import itertools
import json
import socket
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from _bench import arguments, header, offline, percentiles, photo_files, scratch, seconds, table


def main():
    parser = arguments(__doc__)
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--per-phase", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args()
    work = scratch("space")
    offline(GRADIO_ANALYTICS_ENABLED="False")

    import httpx
    import torch
    from gradio_client import Client, handle_file
    from PIL import Image

    import space.app as app
    from cifake_kit.runtime import keep_freed_memory
    from modeling import CifakeConfig, CifakeForImageClassification, CifakeImageProcessor
    from space.app import build_demo, launch

    # Where a request's time goes inside the app: each step's duration, recorded around the app's own calls.
    inside: dict[str, list[float]] = {}

    def clocked(name, function):
        def run(*a, **k):
            start = time.perf_counter()
            try:
                return function(*a, **k)
            finally:
                inside.setdefault(name, []).append((time.perf_counter() - start) * 1000)
        return run

    app.Detector.classify = clocked("app: whole handler", app.Detector.classify)
    app.open_image = clocked("app: open + decode the upload", app.open_image)
    app.explain_images = clocked("app: processor + predict + Grad-CAM", app.explain_images)
    app.save_png = clocked("app: encode + write one PNG (x2)", app.save_png)

    keep_freed_memory()  # as `cifake demo` runs
    torch.manual_seed(0)
    CifakeForImageClassification(CifakeConfig()).save_pretrained(work / "model")
    CifakeImageProcessor().save_pretrained(work / "model")
    images = []
    for i, (path, _) in enumerate(photo_files(args.shared)[::500][:20]):
        target = work / f"upload{i}.jpg"
        Image.open(path).resize((512, 512), Image.Resampling.BICUBIC).save(target, quality=90)
        images.append(str(target))

    demo = build_demo(work / "model")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    launch(demo, server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)  # as `cifake demo`
    url = f"http://127.0.0.1:{port}/"
    print(header("CIFAKE kit: Space request latency and throughput on loopback (bench/bench_space.py)"))
    print(f"# model paper-best (initial weights) | 512x512 JPEG uploads | queue: 1 job at a time | {torch.get_num_threads()} threads")

    api = f"{url}gradio_api"

    def request(http, path, phases=None):
        """Upload, call, read the event stream, fetch both images; returns the predicted label.

        `phases`: a dict that collects each client-side step's milliseconds."""
        marks = [time.perf_counter()]
        with open(path, "rb") as handle:
            uploaded = http.post(f"{api}/upload", files={"files": (Path(path).name, handle, "image/jpeg")}).json()
        marks.append(time.perf_counter())
        call = http.post(f"{api}/call/predict", json={"data": [{"path": uploaded[0], "meta": {"_type": "gradio.FileData"}}]})
        marks.append(time.perf_counter())
        event, data = None, None
        with http.stream("GET", f"{api}/call/predict/{call.json()['event_id']}") as stream:
            for line in stream.iter_lines():
                if line.startswith("event:"):
                    event = line.split(":", 1)[1].strip()
                elif line.startswith("data:") and event in ("complete", "error"):
                    data = json.loads(line.split(":", 1)[1])
                    break
        if event != "complete":
            raise RuntimeError(f"request failed: {data}")
        marks.append(time.perf_counter())
        for image in data[1:3]:
            http.get(image["url"]).raise_for_status()
        marks.append(time.perf_counter())
        if phases is not None:
            for name, start, end in zip(("client: upload (POST /upload)", "client: start the call (POST /call)",
                                         "client: queue + handler + event stream until complete",
                                         "client: fetch the two images"), marks, marks[1:]):
                phases.setdefault(name, []).append((end - start) * 1000)
        return data[0]["label"]

    def timed(name, call, n):
        samples = [seconds(call, images[i % len(images)]) * 1000 for i in range(n)]
        return [name] + [f"{v:.1f} ms" for v in (*percentiles(samples, 50, 95), statistics.mean(samples))]

    http = httpx.Client(timeout=60)
    client = Client(url, verbose=False)
    for path in images[:10]:
        request(http, path)
        client.predict(handle_file(path), api_name="/predict")
    rows = [timed("HTTP API, as the page does it", lambda p: request(http, p), args.requests),
            timed("gradio_client.predict (downloads both images)",
                  lambda p: client.predict(handle_file(p), api_name="/predict"), args.requests)]
    print("\n" + table([f"one full request: upload + predict + Grad-CAM + 2 images back (n = {args.requests})",
                        "p50", "p95", "mean"], rows))

    # One request at a time, each step timed: on the client, and inside the app around its own calls.
    phases: dict[str, list[float]] = {}
    inside.clear()
    for i in range(args.requests):
        request(http, images[i % len(images)], phases)
    print("\n" + table([f"where one request's time goes (HTTP API, n = {args.requests})", "p50", "mean"],
                        [[name, f"{percentiles(samples, 50)[0]:.1f} ms", f"{statistics.mean(samples):.1f} ms"]
                         for name, samples in [*phases.items(), *inside.items()]]))

    def phase(clients: int) -> tuple[int, float, int]:
        """`clients` users sending requests back to back until the phase's count or time runs out."""
        stop, tickets, done, failures = time.perf_counter() + args.seconds, itertools.count(1), [], []

        def user(index):  # next() on a count and list.append are atomic: no lock needed
            with httpx.Client(timeout=60) as own:
                while time.perf_counter() < stop and (n := next(tickets)) <= args.per_phase:
                    done.append(n)
                    try:
                        request(own, images[(index + n) % len(images)])
                    except Exception:  # counted, not fatal: the table shows them
                        failures.append(n)

        with ThreadPoolExecutor(clients) as pool:
            took = seconds(lambda: list(pool.map(user, range(clients))))
        return len(done), took, len(failures)

    print("\n" + table(["concurrent clients (HTTP API)", "requests done", "seconds", "requests/s", "failures"], []))
    for clients in (1, 4, 8):
        done, took, failed = phase(clients)
        print(f"| {clients} | {done} | {took:.1f} | {done / took:.1f} | {failed} |")
    demo.close()


if __name__ == "__main__":
    main()
