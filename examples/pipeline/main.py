"""A fan-out / fan-in pipeline: word frequencies of a text, map-reduce style.

``top_words`` splits the text into chunks, counts each chunk in its own subtask (all
in parallel), merges the counts in one more subtask and keeps the most frequent words.
Each subtask is a separate run with its own retries, so one failed chunk is retried
alone. Run it locally from this directory:

    render-workflows dev -- python main.py
"""

import asyncio
import re
from collections import Counter

from render_sdk import Retry, Workflows

app = Workflows(default_retry=Retry(max_retries=2, wait_duration_ms=250))


@app.task
def count_words(chunk: str) -> dict[str, int]:
    return dict(Counter(re.findall(r"[a-z']+", chunk.lower())))


@app.task
def merge_counts(counts: list[dict[str, int]]) -> dict[str, int]:
    total: Counter[str] = Counter()
    for count in counts:
        total.update(count)
    return dict(total)


@app.task(timeout_seconds=600)
async def top_words(text: str, lines_per_chunk: int = 2, top: int = 5) -> list[list[object]]:
    lines = text.splitlines()
    chunks = [
        "\n".join(lines[i : i + lines_per_chunk]) for i in range(0, len(lines), lines_per_chunk)
    ]
    counts = await asyncio.gather(*(count_words(chunk) for chunk in chunks))  # fan out
    merged = await merge_counts(list(counts))  # fan in
    ranked = sorted(merged.items(), key=lambda item: (-item[1], item[0]))[:top]
    return [[word, n] for word, n in ranked]  # JSON has no tuples: lists come back


if __name__ == "__main__":
    app.start()
