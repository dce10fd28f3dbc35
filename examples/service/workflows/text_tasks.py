"""Text tasks, on their own ``Workflows`` object with its own defaults."""

from render_sdk import Workflows

app = Workflows(default_timeout=60)


@app.task
def word_count(text: str) -> int:
    return len(text.split())


@app.task
def shout(text: str) -> str:
    return text.upper()
