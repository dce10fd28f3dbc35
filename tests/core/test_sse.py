"""Tests of the incremental Server-Sent-Events decoder (render_core.sse).

Every table case is decoded three ways (whole, one byte at a time, and at
Hypothesis-chosen split points) and must give the same events and the same final
decoder state. The official client's known failures each have a
named test below.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Sequence

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from render_core.errors import ProtocolError, ValidationError
from render_core.sse import DEFAULT_MAX_LINE_LENGTH, ServerSentEvent, SSEDecoder

PROPERTY_SETTINGS = settings(max_examples=150, deadline=None)
CASE_SETTINGS = settings(max_examples=20, deadline=None)


def ev(data: str, event: str = "message", id: str = "") -> ServerSentEvent:
    return ServerSentEvent(event=event, data=data, id=id)


@attrs.frozen
class Outcome:
    """Everything observable after decoding a whole stream and closing."""

    events: list[ServerSentEvent]
    last_event_id: str
    retry: int | None
    comments: int


def decode(chunks: Iterable[bytes], **kwargs: object) -> Outcome:
    decoder = SSEDecoder(**kwargs)  # type: ignore[arg-type]
    events: list[ServerSentEvent] = []
    for chunk in chunks:
        events += decoder.feed(chunk)
    events += decoder.close()
    return Outcome(events, decoder.last_event_id, decoder.retry, decoder.comments)


def decode_or_error(chunks: Iterable[bytes], **kwargs: object) -> Outcome | str:
    try:
        return decode(chunks, **kwargs)
    except ProtocolError:
        return "ProtocolError"


def byte_by_byte(data: bytes) -> list[bytes]:
    return [data[i : i + 1] for i in range(len(data))]


def split_at(data: bytes, points: Iterable[int]) -> list[bytes]:
    bounds = [0, *sorted(points), len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


def chunked(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def split_points(data: bytes) -> st.SearchStrategy[list[int]]:
    return st.lists(st.integers(0, len(data)), max_size=12)


# --- The table -------------------------------------------------------------------------


@attrs.frozen
class Case:
    name: str
    stream: bytes
    events: list[ServerSentEvent]
    last_event_id: str = ""
    retry: int | None = None
    comments: int = 0


CASES = [
    # Examples from the WHATWG spec text.
    Case("spec_stock_ticker", b"data: YHOO\ndata: +2\ndata: 10\n\n", [ev("YHOO\n+2\n10")]),
    Case(
        "spec_four_blocks",
        b": test stream\n\ndata: first event\nid: 1\n\ndata:second event\nid\n\n"
        b"data:  third event\n\n",
        [ev("first event", id="1"), ev("second event"), ev(" third event")],
        comments=1,
    ),
    Case("spec_data_alone_blocks", b"data\n\ndata\ndata\n\ndata:", [ev(""), ev("\n")]),
    Case("spec_test_twice", b"data:test\n\ndata: test\n\n", [ev("test"), ev("test")]),
    Case("two_spaces_keep_one", b"data:  test\n\n", [ev(" test")]),
    Case("trailing_whitespace_kept", b"data: x  \n\n", [ev("x  ")]),
    Case("tab_not_stripped", b"data:\tx\n\n", [ev("\tx")]),
    Case("colons_in_value", b"data: a: b:c\n\n", [ev("a: b:c")]),
    # Comments.
    Case("comment_ping", b": ping\n\n", [], comments=1),
    Case("comments_bare_and_text", b":\n:x\ndata: y\n:z\n\n", [ev("y")], comments=3),
    # id handling.
    Case(
        "id_with_nul_ignored",
        b"id: 1\ndata: a\n\nid: 2\x00x\ndata: b\n\n",
        [ev("a", id="1"), ev("b", id="1")],
        last_event_id="1",
    ),
    Case(
        "id_persists_across_events",
        b"id: 7\ndata: a\n\ndata: b\n\n",
        [ev("a", id="7"), ev("b", id="7")],
        last_event_id="7",
    ),
    Case(
        "empty_id_resets",
        b"id: 7\ndata: a\n\nid\ndata: b\n\n",
        [ev("a", id="7"), ev("b")],
    ),
    Case("id_without_data_still_updates", b"id: 9\n\n", [], last_event_id="9"),
    Case("id_after_data_same_event", b"data: a\nid: 3\n\n", [ev("a", id="3")], last_event_id="3"),
    Case("id_unterminated_event_not_counted", b"data: a\n\nid: 5\ndata: b\n", [ev("a")]),
    Case("id_final_line_unterminated", b"data: a\n\nid: 5", [ev("a")]),
    # retry handling.
    Case("retry_valid", b"retry: 2000\n\n", [], retry=2000),
    Case("retry_no_space", b"retry:15\n", [], retry=15),
    Case("retry_zero", b"retry: 0\n", [], retry=0),
    Case(
        "retry_invalid_ignored",
        b"retry: 2000\nretry: 12a\nretry: -1\nretry: \nretry: 1.5\nretry:  3\nretry\n\n",
        [],
        retry=2000,
    ),
    Case("retry_non_ascii_digits_ignored", "retry: ١٢\nretry: ²\n".encode(), []),
    Case("retry_absurdly_long_ignored", b"retry: " + b"1" * 641 + b"\n", []),
    Case("retry_long_but_allowed", b"retry: " + b"1" * 640 + b"\n", [], retry=int("1" * 640)),
    Case("retry_final_line_unterminated", b"retry: 10", [], retry=10),
    # Byte-order mark.
    Case("bom_dropped", b"\xef\xbb\xbfdata: a\n\n", [ev("a")]),
    Case("bom_dropped_only_once", b"\xef\xbb\xbf\xef\xbb\xbfdata: a\n\ndata: b\n\n", [ev("b")]),
    Case("bom_not_at_start_kept", b"data: a\n\n\xef\xbb\xbfdata: b\n\n", [ev("a")]),
    Case("bom_alone", b"\xef\xbb\xbf", []),
    # Line endings.
    Case("cr_only", b"data: a\rdata: b\r\r", [ev("a\nb")]),
    Case("crlf", b"data: a\r\ndata: b\r\n\r\n", [ev("a\nb")]),
    Case("mixed_endings", b"data: a\rdata: b\ndata: c\r\n\n", [ev("a\nb\nc")]),
    Case("lf_then_cr_blank", b"data: a\n\r", [ev("a")]),
    Case("cr_then_crlf_blank", b"data: a\r\r\n", [ev("a")]),
    Case("blank_lines_only", b"\n\n\r\n\r\r", []),
    Case("empty_stream", b"", []),
    # Fields.
    Case("field_without_colon", b"data\n\n", [ev("")]),
    Case("event_without_colon_is_default", b"event\ndata: x\n\n", [ev("x")]),
    Case("empty_event_is_default", b"event:\ndata: x\n\n", [ev("x")]),
    Case("unknown_field_ignored", b"foo: bar\ndata: x\nbaz\n\n", [ev("x")]),
    Case("field_names_case_sensitive", b"Data: x\nEVENT: y\n\n", []),
    Case("field_name_with_space", b"data : x\n\n", []),
    Case("custom_event_type", b"event: task.completed\ndata: {}\n\n", [ev("{}", "task.completed")]),
    Case("event_without_data_not_dispatched", b"event: ping\n\n", []),
    Case(
        "event_type_reset_after_empty_dispatch",
        b"event: ping\n\ndata: x\n\n",
        [ev("x")],
    ),
    Case(
        "event_type_reset_after_dispatch",
        b"event: a\ndata: 1\n\ndata: 2\n\n",
        [ev("1", "a"), ev("2")],
    ),
    Case("last_event_field_wins", b"event: a\nevent: b\ndata: 1\n\n", [ev("1", "b")]),
    Case("nul_allowed_in_data", b"data: a\x00b\n\n", [ev("a\x00b")]),
    # Characters.
    Case(
        "unicode_line_separators_do_not_split",
        "data: a\u2028b\u2029c\u0085d\x0be\x0cf\x1cg\n\n".encode(),
        [ev("a\u2028b\u2029c\u0085d\x0be\x0cf\x1cg")],
    ),
    Case("multibyte_characters", "data: héllo €𝄞\n\n".encode(), [ev("héllo €𝄞")]),
    Case("invalid_utf8_replaced", b"data: \xff\xfe\n\n", [ev("\ufffd\ufffd")]),
    Case("truncated_utf8_replaced", b"data: \xe2\x82\n\n", [ev("\ufffd")]),
    Case("truncated_utf8_at_end", b"data: a\n\n\xe2\x82", [ev("a")]),
    # End of stream.
    Case("trailing_event_discarded", b"data: a\n\ndata: b\n", [ev("a")]),
    Case("trailing_line_unterminated", b"data: a\n\ndata: b", [ev("a")]),
    Case("trailing_comment_unterminated", b": ping", [], comments=1),
    # What the Go dev server sends.
    Case(
        "go_dev_server_framing",
        b'retry: 2000\n\nid: 0\nevent: task.completed\ndata: {"id":"trn-1"}\n\n: ping\n\n',
        [ev('{"id":"trn-1"}', "task.completed", "0")],
        last_event_id="0",
        retry=2000,
        comments=1,
    ),
]


def expected(case: Case) -> Outcome:
    return Outcome(case.events, case.last_event_id, case.retry, case.comments)


def test_case_names_are_unique() -> None:
    assert len({case.name for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_table_whole(case: Case) -> None:
    assert decode([case.stream]) == expected(case)


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_table_byte_by_byte(case: Case) -> None:
    assert decode(byte_by_byte(case.stream)) == expected(case)


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
@CASE_SETTINGS
@given(data=st.data())
def test_table_any_split(case: Case, data: st.DataObject) -> None:
    points = data.draw(split_points(case.stream), label="split points")
    assert decode(split_at(case.stream, points)) == expected(case)


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_table_with_empty_chunks(case: Case) -> None:
    chunks = [b""]
    for byte in byte_by_byte(case.stream):
        chunks += [byte, b""]
    assert decode(chunks) == expected(case)


# --- The official client's failures, fixed ---------------------------


def test_b3_1_multibyte_character_split_across_chunks() -> None:
    raw = "data: héllo\n\n".encode()
    cut = raw.index("é".encode()) + 1  # between the two bytes of "é"
    assert decode([raw[:cut], raw[cut:]]).events == [ev("héllo")]


@pytest.mark.parametrize("cut", [1, 2, 3])
def test_b3_1_four_byte_character_split_at_every_byte(cut: int) -> None:
    raw = "data: 𝄞\n\n".encode()
    start = raw.index("𝄞".encode())
    assert decode([raw[: start + cut], raw[start + cut :]]).events == [ev("𝄞")]


def test_b3_2_multiline_data_is_joined() -> None:
    raw = b'event: task.completed\ndata: {"id": "trn-1",\ndata:  "status": "succeeded"}\n\n'
    (event,) = decode([raw]).events
    assert event.data == '{"id": "trn-1",\n "status": "succeeded"}'
    assert json.loads(event.data) == {"id": "trn-1", "status": "succeeded"}


def test_b3_3_event_without_event_line_is_message() -> None:
    assert decode([b"data: x\n\n"]).events == [ServerSentEvent(event="message", data="x")]


def test_b3_4_exactly_one_leading_space_stripped() -> None:
    raw = b"data:  two\n\ndata:   three \n\nevent:  spaced\ndata:none\n\n"
    assert decode([raw]).events == [ev(" two"), ev("  three "), ev("none", " spaced")]


def test_b3_6_bare_cr_line_endings() -> None:
    raw = b"id: 1\revent: task.completed\rdata: {}\r\r"
    assert decode([raw]).events == [ev("{}", "task.completed", "1")]


def test_b3_6_cr_at_chunk_end_then_lf_is_one_line_end() -> None:
    # The CR completes the line at once; the LF in the next chunk must not add a
    # blank line (which would dispatch the event early and split its data).
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\r") == []
    assert decoder.feed(b"\ndata: b\r") == []
    assert decoder.feed(b"\n\r") == [ev("a\nb")]
    assert decoder.feed(b"\n") == []


def test_b3_7_event_not_ended_by_blank_line_is_discarded_at_close() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"id: 1\ndata: done\n\nid: 2\ndata: cut off\n") == [ev("done", id="1")]
    assert decoder.close() == []
    assert decoder.last_event_id == "1"  # resuming replays the event that was cut off


def test_h_json_line_separators_do_not_split_lines() -> None:
    payload = json.dumps({"result": "a\u2028b\u2029c\u0085d"}, ensure_ascii=False)
    raw = f"data: {payload}\n\n".encode()
    assert decode(byte_by_byte(raw)).events == [ev(payload)]
    assert json.loads(payload)["result"] == "a\u2028b\u2029c\u0085d"


# --- Decoder state -----------------------------------------------------------------------


def test_event_value_type() -> None:
    event = ServerSentEvent()
    assert (event.event, event.data, event.id, event.retry) == ("message", "", "", None)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        event.data = "x"  # type: ignore[misc]
    with pytest.raises(TypeError):
        ServerSentEvent("message")  # type: ignore[call-arg]


def test_last_event_id_seed_persists_until_replaced() -> None:
    decoder = SSEDecoder(last_event_id="41")
    assert decoder.last_event_id == "41"
    assert decoder.feed(b"data: a\n\n") == [ev("a", id="41")]
    assert decoder.feed(b"id: 42\ndata: b\n\n") == [ev("b", id="42")]
    assert decoder.last_event_id == "42"


def test_last_event_id_moves_only_on_dispatch() -> None:
    decoder = SSEDecoder()
    decoder.feed(b"id: 5\ndata: a\n")
    assert decoder.last_event_id == ""
    decoder.feed(b"\n")
    assert decoder.last_event_id == "5"


def test_retry_and_comments_are_live() -> None:
    decoder = SSEDecoder()
    assert (decoder.retry, decoder.comments) == (None, 0)
    decoder.feed(b"retry: 2000\n: ping\n")
    assert (decoder.retry, decoder.comments) == (2000, 1)
    decoder.feed(b": ping\n\n")
    assert decoder.comments == 2


def test_events_returned_by_the_chunk_that_completes_them() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: 1\n\ndata: 2\n\ndata: 3\n") == [ev("1"), ev("2")]
    assert decoder.feed(b"\n") == [ev("3")]
    assert decoder.feed(b"") == []


def test_feed_after_close_raises() -> None:
    decoder = SSEDecoder()
    decoder.feed(b"data: a\n\n")
    assert decoder.close() == []
    with pytest.raises(ProtocolError, match="decoder is closed"):
        decoder.feed(b"data: b\n\n")
    with pytest.raises(ProtocolError, match="decoder is closed"):
        decoder.feed(b"")


def test_close_is_idempotent() -> None:
    decoder = SSEDecoder()
    decoder.feed(b"retry: 5")
    assert decoder.close() == []
    assert decoder.close() == []
    assert decoder.retry == 5


@pytest.mark.parametrize("bad", [0, -1])
def test_max_line_length_must_be_positive(bad: int) -> None:
    with pytest.raises(ValidationError, match="max_line_length"):
        SSEDecoder(max_line_length=bad)
    with pytest.raises(ValueError, match="max_line_length"):
        SSEDecoder(max_line_length=bad)


def test_seed_last_event_id_with_nul_rejected() -> None:
    with pytest.raises(ValidationError, match="U\\+0000"):
        SSEDecoder(last_event_id="a\0b")


def test_default_limit() -> None:
    assert DEFAULT_MAX_LINE_LENGTH == 1 << 20
    assert SSEDecoder().max_line_length == DEFAULT_MAX_LINE_LENGTH


# --- Line-length limit -------------------------------------------------------------------

LIMIT = 100


def line_of(length: int) -> bytes:
    return b"data: " + b"x" * (length - len(b"data: "))


@pytest.mark.parametrize("ending", [b"\n", b"\r", b"\r\n"])
def test_line_at_the_limit_is_accepted(ending: bytes) -> None:
    raw = line_of(LIMIT) + ending + ending
    for chunks in ([raw], byte_by_byte(raw), chunked(raw, 7)):
        outcome = decode(chunks, max_line_length=LIMIT)
        assert outcome.events == [ev("x" * (LIMIT - 6))]


@pytest.mark.parametrize("terminated", [True, False])
def test_line_over_the_limit_raises(terminated: bool) -> None:
    raw = line_of(LIMIT + 1) + (b"\n\n" if terminated else b"")
    for chunks in ([raw], byte_by_byte(raw), chunked(raw, 7)):
        with pytest.raises(ProtocolError, match=f"longer than {LIMIT} characters"):
            decode(chunks, max_line_length=LIMIT)


def test_line_over_the_limit_in_the_middle_of_a_chunk() -> None:
    raw = b"data: a\n\n" + line_of(LIMIT + 1) + b"\ndata: b\n\n"
    with pytest.raises(ProtocolError):
        decode([raw], max_line_length=LIMIT)


def test_limit_counts_characters_not_bytes() -> None:
    raw = b"data:" + "é".encode() * (LIMIT - 5) + b"\n\n"
    assert len(raw) > LIMIT * 1.9
    assert decode([raw], max_line_length=LIMIT).events == [ev("é" * (LIMIT - 5))]


def test_limit_does_not_count_the_bom() -> None:
    raw = b"\xef\xbb\xbf" + line_of(LIMIT) + b"\n\n"
    assert len(decode([raw], max_line_length=LIMIT).events) == 1


def test_memory_is_bounded_an_unterminated_line_fails_as_soon_as_it_is_too_long() -> None:
    # The decoder never holds more than the limit: it fails on the very chunk that
    # would take the unfinished line past it, long before any line end arrives.
    decoder = SSEDecoder(max_line_length=LIMIT)
    for _ in range(LIMIT // 10):
        assert decoder.feed(b"x" * 10) == []
    with pytest.raises(ProtocolError, match=str(LIMIT)):
        decoder.feed(b"x")


def test_many_short_lines_never_hit_the_limit() -> None:
    raw = b"data: x\n" * 10_000 + b"\n"
    (event,) = decode(chunked(raw, 64), max_line_length=LIMIT).events
    assert event.data == "\n".join(["x"] * 10_000)


def test_decoder_is_unusable_after_a_limit_error() -> None:
    decoder = SSEDecoder(max_line_length=LIMIT)
    with pytest.raises(ProtocolError):
        decoder.feed(b"id: 1\ndata: a\n\n" + line_of(LIMIT + 1) + b"\n")
    # Nothing of the failing chunk was applied.
    assert decoder.last_event_id == ""
    with pytest.raises(ProtocolError, match=r"earlier error.*longer than 100"):
        decoder.feed(b"data: fine\n\n")
    assert decoder.close() == []
    with pytest.raises(ProtocolError, match="earlier error"):
        decoder.feed(b"")


def test_limit_checked_when_close_flushes_a_truncated_character() -> None:
    decoder = SSEDecoder(max_line_length=5)
    decoder.feed(b"data:\xe2\x82")  # 5 characters so far, the 6th still undecoded
    with pytest.raises(ProtocolError):
        decoder.close()
    with pytest.raises(ProtocolError, match="earlier error"):
        decoder.feed(b"\n")


# --- Linear time, checked by correctness only (timing lives in bench/) -------------------


def big_stream(count: int) -> bytes:
    return b"".join(
        b'id: %d\nevent: task.completed\ndata: {"id": "trn-%d", "status": "succeeded"}\n\n' % (i, i)
        for i in range(count)
    )


@pytest.mark.parametrize("chunk_size", [None, 64])
def test_twenty_thousand_events(chunk_size: int | None) -> None:
    raw = big_stream(20_000)
    chunks = [raw] if chunk_size is None else chunked(raw, chunk_size)
    outcome = decode(chunks)
    assert len(outcome.events) == 20_000
    assert outcome.events[12_345] == ev(
        '{"id": "trn-12345", "status": "succeeded"}', "task.completed", "12345"
    )
    assert outcome.last_event_id == "19999"


def test_one_long_line_in_tiny_chunks() -> None:
    # An unfinished line is kept as pieces and joined once: 1 MiB in 64-byte chunks.
    body = b"y" * (DEFAULT_MAX_LINE_LENGTH - len(b"data: "))
    raw = b"data: " + body + b"\n\n"
    (event,) = decode(chunked(raw, 64)).events
    assert len(event.data) == len(body)


# --- Properties --------------------------------------------------------------------------

line_text = st.text(st.characters(codec="utf-8", exclude_characters="\r\n"), max_size=12)
id_text = st.text(st.characters(codec="utf-8", exclude_characters="\r\n\0"), max_size=8)


@attrs.frozen
class Generated:
    event: str | None
    data_lines: list[str]
    id: str | None
    comment: str | None


generated_events = st.builds(
    Generated,
    event=st.none() | line_text,
    data_lines=st.lists(line_text, min_size=1, max_size=4),
    id=st.none() | id_text,
    comment=st.none() | line_text,
)


def field(name: str, value: str, compact: bool) -> str:
    # "name:value" is only equivalent to "name: value" when value has no leading space.
    if compact and not value.startswith(" "):
        return f"{name}:{value}"
    return f"{name}: {value}"


def serialise(
    events: Sequence[Generated], draw_ending: st.DataObject, bom: bool
) -> tuple[bytes, list[ServerSentEvent], str]:
    lines: list[str] = []
    expected_events: list[ServerSentEvent] = []
    last_id = ""
    for event in events:
        if event.comment is not None:
            lines.append(":" + event.comment)
        compact = draw_ending.draw(st.booleans(), label="compact")
        if event.id is not None:
            lines.append(field("id", event.id, compact))
            last_id = event.id
        if event.event is not None:
            lines.append(field("event", event.event, compact))
        lines.extend(field("data", line, compact) for line in event.data_lines)
        lines.append("")
        expected_events.append(
            ServerSentEvent(
                event=event.event or "message", data="\n".join(event.data_lines), id=last_id
            )
        )
    out: list[str] = []
    previous = ""
    for line in lines:
        ending = draw_ending.draw(st.sampled_from(["\n", "\r", "\r\n"]), label="ending")
        if previous == "\r" and line == "" and ending == "\n":
            ending = "\r\n"  # CR + LF would read as one line end, not two
        out.append(line + ending)
        previous = ending
    text = ("\ufeff" if bom else "") + "".join(out)
    return text.encode(), expected_events, last_id


@PROPERTY_SETTINGS
@given(events=st.lists(generated_events, max_size=6), bom=st.booleans(), data=st.data())
def test_serialised_events_round_trip_under_any_chunking(
    events: list[Generated], bom: bool, data: st.DataObject
) -> None:
    raw, expected_events, last_id = serialise(events, data, bom)
    points = data.draw(split_points(raw), label="split points")
    comments = sum(event.comment is not None for event in events)
    want = Outcome(expected_events, last_id, None, comments)
    assert decode([raw]) == want
    assert decode(split_at(raw, points)) == want


sse_ish_bytes = st.lists(
    st.sampled_from(
        [
            *(b"data", b"event", b"id", b"retry", b":", b" ", b"\r", b"\n", b"1", b"x", b"\x00"),
            *(b"\xef\xbb\xbf", b"\xe2\x82", b"\xac", b"\xff", "\u2028".encode()),
        ]
    ),
    max_size=40,
).map(b"".join)


@PROPERTY_SETTINGS
@given(
    raw=st.binary(max_size=200) | sse_ish_bytes,
    limit=st.integers(1, 30) | st.just(DEFAULT_MAX_LINE_LENGTH),
    data=st.data(),
)
def test_any_bytes_any_chunking_same_outcome_or_protocol_error(
    raw: bytes, limit: int, data: st.DataObject
) -> None:
    # Anything but ProtocolError escaping fails the test; the outcome (including
    # whether the limit was hit) never depends on where the chunks were cut.
    whole = decode_or_error([raw], max_line_length=limit)
    points = data.draw(split_points(raw), label="split points")
    assert decode_or_error(split_at(raw, points), max_line_length=limit) == whole
    if isinstance(whole, Outcome):
        for event in whole.events:
            assert event.event
            assert "\0" not in event.id
            assert "\r" not in event.data
