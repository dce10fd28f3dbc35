"""The entry point of a workflow service whose tasks live in several modules.

Render (or the dev server) runs this file; from ``examples/service``:

    render-workflows dev -- python workflows/main.py

The tasks are identified as ``service/<task name>`` (the dev server takes the slug
from the directory it is started in).
"""

from math_tasks import app as math_app
from math_tasks import sum_of_squares
from text_tasks import app as text_app
from text_tasks import shout, word_count

from render_sdk import Workflows

# Defaults given here apply only to tasks defined on the combined object (``report``).
app = Workflows.from_workflows(math_app, text_app, default_plan="starter")


@app.task
async def report(text: str) -> dict[str, object]:
    """Tasks of other modules, called as subtasks."""
    split = text.split()
    words = await word_count(text)
    lengths = await sum_of_squares([len(word) for word in split])
    title = await shout(split[0]) if split else ""
    return {"words": words, "sum_of_squared_lengths": lengths, "title": title}


if __name__ == "__main__":
    app.start()
