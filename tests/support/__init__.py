"""Test support: stand-ins for what cannot exist on a test machine (Render's cloud).

:class:`FakeRender` serves Render's REST + SSE API on loopback TCP; see
:mod:`tests.support.fake_render` for what it implements and how to break it on purpose.
"""

from __future__ import annotations

from .fake_render import FakeRender, RecordedRequest

__all__ = ["FakeRender", "RecordedRequest"]
