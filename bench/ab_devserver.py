"""Paired A/B of the dev server's trivial round trip between source trees.

On a shared or virtual machine the speed of the host drifts by a factor of two or
more between minutes, so two benchmark runs made one after the other cannot tell a
5% change from the drift. This script starts one dev server per source tree (each
with ``PYTHONPATH`` set to its tree, which its worker inherits) and times trivial
``run_task`` round trips on them in turn, call by call, so that every tree sees the
same host. Typical use, comparing the working tree with the last commit::

    git worktree add /tmp/base HEAD
    python bench/ab_devserver.py /tmp/base . --rounds 150 --burst 200

Prints p50 and p95 per tree and client face, and with ``--burst N`` the rate of N
runs started at once (alternating trees, twice each). Not a test: it only measures.
"""

from __future__ import annotations

import argparse
import asyncio
import pathlib
import statistics
import sys
import time
from contextlib import ExitStack

from sc_devserver import SLUG, dev_server, wait_registered


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("trees", nargs="+", type=pathlib.Path, help="source trees to compare")
    parser.add_argument("--rounds", type=int, default=100, help="round trips per tree and face")
    parser.add_argument("--burst", type=int, default=0, help="also time N runs started at once")
    args = parser.parse_args()
    trees = [tree.resolve() for tree in args.trees]
    for tree in trees:
        if not (tree / "render_devserver").is_dir():
            parser.error(f"{tree} holds no render_devserver package")

    from render_sdk import Render, RenderAsync
    from render_transports.keepalive_transport import KeepAliveTransport

    with ExitStack() as stack:
        servers = [
            stack.enter_context(dev_server(sys.executable, pythonpath=str(tree))) for tree in trees
        ]
        urls = [url for _, url in servers]
        faces: list[tuple[Render, Render]] = []
        for server, url in servers:
            plain = stack.enter_context(Render(base_url=url, env={}))
            keepalive = stack.enter_context(
                Render(base_url=url, env={}, transport=KeepAliveTransport())
            )
            wait_registered(plain, server)
            for warm_up in range(5):
                plain.workflows.run_task(f"{SLUG}/noop", [warm_up])
                keepalive.workflows.run_task(f"{SLUG}/noop", [warm_up])
            faces.append((plain, keepalive))
        times: list[tuple[list[float], list[float]]] = [([], []) for _ in trees]
        for index in range(args.rounds):
            for (plain, keepalive), (plain_times, keepalive_times) in zip(
                faces, times, strict=True
            ):
                for client, into in ((plain, plain_times), (keepalive, keepalive_times)):
                    began = time.perf_counter()
                    client.workflows.run_task(f"{SLUG}/noop", [index])
                    into.append((time.perf_counter() - began) * 1000)
        for tree, samples in zip(trees, times, strict=True):
            for face, values in zip(("requests", "keep-alive"), samples, strict=True):
                p95 = statistics.quantiles(values, n=20)[18] if len(values) > 1 else values[0]
                p50 = statistics.median(values)
                print(f"{tree}  {face:<10}  p50 {p50:7.2f} ms  p95 {p95:7.2f} ms")

        async def burst(url: str) -> float:
            async with RenderAsync(base_url=url, env={}) as client:
                began = time.perf_counter()
                runs = await asyncio.gather(
                    *(client.workflows.start_task(f"{SLUG}/noop", [i]) for i in range(args.burst))
                )
                await asyncio.gather(*(run.wait(timeout=600) for run in runs))
                return args.burst / (time.perf_counter() - began)

        if args.burst:
            for _ in range(2):
                for tree, url in zip(trees, urls, strict=True):
                    print(f"{tree}  burst of {args.burst}: {asyncio.run(burst(url)):.1f} runs/s")


if __name__ == "__main__":
    main()
