"""Runs in the official 1.x SDK's venv: prints, as JSON, the text its samples live in
(the package README and the docstrings users read), for ``test_official_1x_samples``."""

import importlib.metadata
import inspect
import json

import render
from render.workflows.app import Workflows

print(
    json.dumps(
        {
            "version": importlib.metadata.version("render"),
            "readme": importlib.metadata.metadata("render").get_payload(),
            "docstrings": [
                inspect.getdoc(render) or "",
                inspect.getdoc(Workflows) or "",
                inspect.getdoc(Workflows.task) or "",
            ],
        }
    )
)
