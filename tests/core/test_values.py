"""render_core.values: what the slotted value classes promise (the attrs ones did too)."""

from __future__ import annotations

import copy
import pickle

import pytest

from render_core.callback import SubtaskOutcome, TaskInput
from render_core.effects import Send, Sleep
from render_core.http import Request, Response
from render_core.taskserver import RegisteredTask
from render_core.values import FrozenError


def test_equal_by_fields_and_only_to_the_same_class() -> None:
    assert Sleep(1.0) == Sleep(1.0)
    assert Sleep(1.0) != Sleep(2.0)
    assert Response(status=200) != Request(method="GET", url="http://x")
    assert (Sleep(1.0) == 1.0) is False
    assert TaskInput("a", [1]) == TaskInput("a", [1], attempt=None)


def test_hashable_when_the_fields_are() -> None:
    assert len({Sleep(1.0), Sleep(1.0), Sleep(2.0)}) == 2
    assert hash(Response(status=200, headers={"A": "b"})) == hash(
        Response(status=200, headers=[("A", "b")])
    )
    with pytest.raises(TypeError):
        hash(SubtaskOutcome(False, value=[1]))  # a list inside: unhashable, as with attrs


def test_immutable() -> None:
    request = Request(method="GET", url="http://x")
    with pytest.raises(FrozenError, match="cannot set 'url'"):
        request.url = "http://y"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        del request.url  # type: ignore[misc]
    with pytest.raises(AttributeError):
        request.other = 1  # type: ignore[attr-defined]


def test_repr_names_every_field_and_hides_credentials() -> None:
    request = Request(method="GET", url="http://x", headers={"Authorization": "Bearer s3cret"})
    shown = repr(request)
    assert shown.startswith("Request(")
    assert "s3cret" not in shown
    assert "<redacted>" in shown
    assert repr(Sleep(0.5)) == "Sleep(seconds=0.5)"
    assert "name='t'" in repr(RegisteredTask(name="t"))


def test_copy_and_pickle_round_trip() -> None:
    send = Send(Request(method="POST", url="http://x", body=b"{}"))
    assert pickle.loads(pickle.dumps(send)) == send
    assert copy.deepcopy(send) == send
    task = RegisteredTask(name="t", parameters=[{"name": "a"}])
    assert copy.copy(task) == task
