# Copyright 2026 The hf-reason Authors. Licensed under the Apache License, Version 2.0.
"""Cold start of `hf-reason app`, printed as `name: ours X, reference Y, ratio Z` from one run.

Ours: a fresh `hf-reason app` process (imports, the small demo models or the given folders, the Gradio
page) until its page answers over HTTP. Reference: a fresh process serving a one-line Gradio Blocks page,
the floor any Gradio app pays (Python, gradio's imports, the server). The two are started alternately,
`--repeats` times each, and the medians compared; the goal is a cold start under 10 s with the small models.

    python bench/app_startup.py
    python bench/app_startup.py --repeats 5 --trm outputs/demo/trm-sudoku
"""

import argparse
import socket
import statistics
import subprocess
import sys
import time
import urllib.request


GOAL_SECONDS = 10.0
BARE_GRADIO = (
    "import sys, gradio as gr\n"
    "with gr.Blocks() as page:\n"
    "    gr.Markdown('hello')\n"
    "page.launch(server_name='127.0.0.1', server_port=int(sys.argv[1]), prevent_thread_lock=False)\n"
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def cold_start_seconds(command: list, port: int, timeout: float = 120.0) -> float:
    """Seconds from starting `command` in a fresh process until http://127.0.0.1:`port`/ answers."""
    started = time.perf_counter()
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        while time.perf_counter() - started < timeout:
            if server.poll() is not None:
                raise RuntimeError(f"`{' '.join(command)}` exited: {server.stderr.read().decode()[-2000:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5):
                    return time.perf_counter() - started
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"`{' '.join(command)}` did not answer in {timeout:.0f} s")
    finally:
        server.terminate()
        server.wait(timeout=30)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="Cold starts of each (default 5).")
    parser.add_argument("--trm", action="append", default=None, metavar="DIR", help="`hf-reason app --trm`.")
    parser.add_argument("--crsm", default=None, metavar="DIR")
    parser.add_argument("--meta", default=None, metavar="DIR")
    args = parser.parse_args()
    if args.repeats < 1:
        parser.error(f"--repeats must be at least 1, got {args.repeats}")
    options = [f"--trm={folder}" for folder in args.trm or []]
    options += [f"--{name}={value}" for name, value in (("crsm", args.crsm), ("meta", args.meta)) if value]

    ours, reference = [], []
    for _ in range(args.repeats):
        port = free_port()
        ours.append(
            cold_start_seconds([sys.executable, "-m", "hf_reason.cli", "app", *options, "--port", str(port)], port)
        )
        port = free_port()
        reference.append(cold_start_seconds([sys.executable, "-c", BARE_GRADIO, str(port)], port))
    ours_s, reference_s = statistics.median(ours), statistics.median(reference)
    verdict = "met" if max(ours) < GOAL_SECONDS else "not met"
    print(
        f"app cold start (median of {args.repeats}): ours {ours_s:.2f} s, reference {reference_s:.2f} s "
        f"(bare Gradio Blocks), ratio {ours_s / reference_s:.2f}; worst {max(ours):.2f} s, "
        f"goal < {GOAL_SECONDS:.0f} s: {verdict}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
