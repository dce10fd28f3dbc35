"""Math tasks, on their own ``Workflows`` object; ``main.py`` combines it with the others."""

import asyncio

from render_sdk import Retry, Workflows

app = Workflows(default_retry=Retry(max_retries=2, wait_duration_ms=500))


@app.task
def square(a: int) -> int:
    return a * a


@app.task
async def sum_of_squares(numbers: list[int]) -> int:
    """One ``square`` subtask per number, all in parallel."""
    squares = await asyncio.gather(*(square(n) for n in numbers))
    return sum(squares)
