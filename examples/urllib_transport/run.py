"""Start runs of the service example and wait for them with the urllib client.

With ``examples/service`` running on the dev server:

    RENDER_USE_LOCAL_DEV=true python run.py
"""

from urllib_transport import UrllibClient

from render_sdk.client.errors import TaskRunError


def main() -> None:
    client = UrllibClient()  # the core's configuration rules: RENDER_API_KEY, local dev...
    runs = [client.start_task("service/square", [n]) for n in range(20)]
    finished = client.wait_for_runs([run.id for run in runs], timeout=120)
    print("squares:", [run.results[0] for run in finished])
    print("details of the first:", client.get_task_run(runs[0].id).status)
    failing = client.start_task("service/square", ["x"])
    try:
        client.wait_for_runs([failing.id], timeout=120)
    except TaskRunError as exc:
        print(f"a failed run raises TaskRunError: {exc}")


if __name__ == "__main__":
    main()
