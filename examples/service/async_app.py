"""An asyncio program starting a hundred runs and awaiting them together.

    RENDER_USE_LOCAL_DEV=true python async_app.py

Every awaited run shares one event stream with the others (a stream carries up to
a hundred runs), instead of a connection per run.
"""

import asyncio

from render_sdk import RenderAsync


async def main() -> None:
    async with RenderAsync() as render:
        started = await asyncio.gather(
            *(render.workflows.start_task("service/square", [n]) for n in range(100))
        )
        finished = await asyncio.gather(*started)  # an AwaitableTaskRun resolves to its details
        print("sum of 100 squares:", sum(run.results[0] for run in finished))
        print("event streams opened:", render.streams_opened)

        # Or wait with a deadline, and take runs as they finish.
        runs = [await render.workflows.start_task("service/shout", [w]) for w in ["a", "b"]]
        async for done in render.workflows.as_completed([run.id for run in runs], timeout=60):
            print("finished:", done.results[0])


if __name__ == "__main__":
    asyncio.run(main())
