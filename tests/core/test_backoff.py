"""Tests for render_core.backoff: schedules, Retry-After parsing, the retry table.

Fixed clocks and ``random.Random(0)`` only: nothing here sleeps or reads the time.
"""

from __future__ import annotations

import builtins
import calendar
import math
import random
import sys
from email.utils import formatdate

import pytest
from hypothesis import given
from hypothesis import strategies as st

from render_core.backoff import (
    CONFIRMATION_GET,
    DEFAULT_BASE,
    DEFAULT_CAP,
    DEFAULT_FACTOR,
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_MAX_RETRY_AFTER,
    EVENT_STREAM,
    REST_IDEMPOTENT,
    REST_NON_IDEMPOTENT,
    TASK_SOCKET,
    TASK_SOCKET_BACKOFF,
    Backoff,
    Next,
    Outcome,
    RetryDecision,
    capped_growth,
    classify,
    decide,
    parse_http_date,
    parse_retry_after,
    rest_rules,
)
from render_core.errors import (
    ConnectionFailed,
    ConnectTimeout,
    NetworkError,
    ReadTimeout,
    ServerError,
    TimeoutError,
)

# 1994-11-06 08:49:37 UTC, the RFC 9110 example date.
RFC_EXAMPLE = 784111777.0
# A fixed "now" 30 s before the example date.
NOW = RFC_EXAMPLE - 30
# 2025-01-01 00:00:00 UTC, for two-digit year resolution.
NOW_2025 = float(calendar.timegm((2025, 1, 1, 0, 0, 0)))


def utc(*fields: int) -> float:
    return float(calendar.timegm((*fields, 0, 0, 0)[:6]))


# --- Backoff: golden values -------------------------------------------------------


def test_defaults_are_the_documented_constants() -> None:
    policy = Backoff()
    assert (policy.base, policy.factor, policy.cap, policy.jitter, policy.max_attempts) == (
        DEFAULT_BASE,
        DEFAULT_FACTOR,
        DEFAULT_CAP,
        True,
        DEFAULT_MAX_ATTEMPTS,
    )


def schedule(policy: Backoff, rng: random.Random | None = None) -> list[float]:
    """The waits one call makes before giving up, as decide() hands them out."""
    delays = []
    for attempt in range(1, policy.max_attempts + 1):
        decision = decide(policy, rest_rules("GET"), attempt=attempt, status=503, rng=rng)
        if not decision.retry:
            break
        delays.append(decision.delay)
    return delays


def test_default_schedule_without_rng_is_deterministic() -> None:
    assert schedule(Backoff()) == [0.25, 0.5, 1.0]
    assert schedule(Backoff(jitter=False), random.Random(0)) == [0.25, 0.5, 1.0]


def test_default_schedule_with_seeded_jitter() -> None:
    delays = schedule(Backoff(), random.Random(0))
    assert delays == pytest.approx([0.21110546288126203, 0.37897720147015124, 0.420571580830845])
    # The same seed gives the same schedule: the core holds no hidden state.
    assert schedule(Backoff(), random.Random(0)) == delays


def test_task_socket_schedule_matches_the_official_client() -> None:
    delays = schedule(TASK_SOCKET_BACKOFF, random.Random(0))  # jitter off: rng ignored
    assert delays == [0.25, 0.5, 1.0, 2.0, 4.0, 8.0] + [16.0] * 18
    assert len(delays) == TASK_SOCKET_BACKOFF.max_attempts - 1 == 24
    assert sum(delays) == 303.75


@pytest.mark.parametrize(
    ("policy", "retry_number", "expected"),
    [
        (Backoff(base=0.0, cap=5.0), 3, 0.0),
        (Backoff(base=2.0, cap=1.0), 0, 1.0),  # base above cap: the cap wins at once
        (Backoff(base=0.5, factor=1.0, cap=10.0), 1000, 0.5),  # constant backoff
        (Backoff(base=3, factor=2, cap=100), 2, 12.0),  # ints in, float out
        (Backoff(cap=10.0), 10**400, 10.0),  # a huge retry number does not overflow
        (Backoff(base=1e-300, factor=10.0, cap=1e10), 305, 1e5),
    ],
)
def test_delay_edge_cases(policy: Backoff, retry_number: int, expected: float) -> None:
    result = policy.delay(retry_number)
    assert result == pytest.approx(expected)
    assert isinstance(result, float)


def test_delay_with_power_beyond_float_range() -> None:
    # 10.0 ** 309 overflows a float, but 1e-300 * 10 ** 309 = 1e9 is fine.
    assert Backoff(base=1e-300, factor=10.0, cap=1e10).delay(309) == pytest.approx(1e9)
    # At the very edge of the float range the result stays finite and capped.
    widest = Backoff(base=5e-324, factor=10.0, cap=sys.float_info.max)
    for retry_number in range(300, 700):
        assert 0.0 < widest.delay(retry_number) <= sys.float_info.max


@pytest.mark.parametrize(
    ("base", "factor", "n", "cap", "expected"),
    [
        (1000, 2.0, 3, 1e9, 8000.0),  # an int base still gives a float
        (8.0, 0.5, 3, 10.0, 1.0),  # a factor below 1 shrinks
        (100.0, 0.5, 0, 10.0, 10.0),  # ...from a base above the cap
        (100.0, 0.5, 10**400, 10.0, 0.0),  # ...to nothing, for any n
        (1.0, 0.0, 1, 10.0, 0.0),
        (1.0, 0.0, 0, 10.0, 1.0),
        (0.0, 1e300, 10**400, 10.0, 0.0),  # no base: nothing to grow
        (2.0, 1.0, 10**400, 10.0, 2.0),
    ],
)
def test_capped_growth(base: float, factor: float, n: int, cap: float, expected: float) -> None:
    result = capped_growth(base, factor, n, cap)
    assert result == expected
    assert isinstance(result, float)


def test_negative_retry_number_is_rejected() -> None:
    with pytest.raises(ValueError, match="retry_number"):
        Backoff().delay(-1)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("base", -0.1),
        ("base", math.nan),
        ("base", math.inf),
        ("factor", 0.5),
        ("factor", math.inf),
        ("cap", -1.0),
        ("cap", math.nan),
        ("max_attempts", 0),
        ("max_attempts", True),
    ],
)
def test_validation_names_the_field(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=rf"Backoff\.{field} must be"):
        Backoff(**{field: value})  # type: ignore[arg-type]


def test_backoff_is_frozen() -> None:
    with pytest.raises(AttributeError, match="immutable"):
        Backoff().base = 1.0  # type: ignore[misc]


# --- Backoff: properties ----------------------------------------------------------

finite_non_negative = st.floats(min_value=0.0, allow_nan=False, allow_infinity=False)
policies = st.builds(
    Backoff,
    base=finite_non_negative,
    factor=st.floats(min_value=1.0, allow_nan=False, allow_infinity=False),
    cap=finite_non_negative,
    jitter=st.booleans(),
    max_attempts=st.integers(min_value=1, max_value=50),
)
retry_numbers = st.one_of(
    st.integers(min_value=0, max_value=100), st.integers(min_value=0, max_value=10**500)
)


@given(policy=policies, n=retry_numbers)
def test_backoff_grows_by_capped_growth(policy: Backoff, n: int) -> None:
    plain = policy.replace(jitter=False)
    assert plain.delay(n) == capped_growth(policy.base, policy.factor, n, policy.cap)


@given(policy=policies, n=retry_numbers, seed=st.integers(0, 2**32))
def test_delay_is_between_zero_and_cap(policy: Backoff, n: int, seed: int) -> None:
    for rng in (None, random.Random(seed)):
        delay = policy.delay(n, rng)
        assert 0.0 <= delay <= policy.cap


@given(policy=policies, n=retry_numbers, step=st.integers(min_value=1, max_value=10**6))
def test_delay_without_jitter_never_decreases(policy: Backoff, n: int, step: int) -> None:
    policy = policy.replace(jitter=False)
    assert policy.delay(n) <= policy.delay(n + 1) <= policy.delay(n + step)


@given(policy=policies, n=retry_numbers, seed=st.integers(0, 2**32))
def test_full_jitter_stays_under_the_plain_delay(policy: Backoff, n: int, seed: int) -> None:
    plain = policy.replace(jitter=False).delay(n)
    jittered = policy.replace(jitter=True).delay(n, random.Random(seed))
    assert 0.0 <= jittered <= plain


@given(policy=policies, seed=st.integers(0, 2**32))
def test_a_budget_allows_its_retries_and_without_waits_zeroes_them(
    policy: Backoff, seed: int
) -> None:
    delays = schedule(policy, random.Random(seed))
    assert len(delays) == policy.max_attempts - 1
    fast = policy.without_waits()
    assert fast.max_attempts == policy.max_attempts
    assert schedule(fast, random.Random(seed)) == [0.0] * (policy.max_attempts - 1)


# --- Retry-After and HTTP-dates ---------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("0", 0.0),
        ("120", 120.0),
        ("007", 7.0),
        ("1.5", 1.5),
        ("  3 ", 3.0),
        ("\t3\r\n", 3.0),
        ("", None),
        ("   ", None),
        ("-1", None),
        ("+1", None),
        ("-0.5", None),
        ("1.", None),
        (".5", None),
        ("1e3", None),
        ("nan", None),
        ("NaN", None),
        ("inf", None),
        ("Infinity", None),
        ("1_000", None),
        ("١٢", None),  # Arabic-Indic digits: float() takes them, HTTP does not
        ("5 s", None),
        ("5, 6", None),
        ("soon", None),
        ("9" * 400, None),  # too big for a float: infinite, so rejected
        # The three HTTP-date formats, 30 s after NOW.
        ("Sun, 06 Nov 1994 08:49:37 GMT", 30.0),
        ("Sunday, 06-Nov-94 08:49:37 GMT", 30.0),
        ("Sun Nov  6 08:49:37 1994", 30.0),
        ("Sun Nov 06 08:49:37 1994", 30.0),
        (" Sun, 06 Nov 1994 08:49:37 GMT ", 30.0),
        ("sun, 06 nov 1994 08:49:37 gmt", 30.0),  # tolerant of case
        ("Mon, 06 Nov 1994 08:49:37 GMT", 30.0),  # a wrong day name still names the date
        # Dates in the past mean "now".
        ("Sun, 06 Nov 1994 08:49:00 GMT", 0.0),
        ("Thu, 01 Jan 1970 00:00:00 GMT", 0.0),
        # Malformed or impossible dates.
        ("Sun, 06 Nov 1994 08:49:37 GMT trailing", None),
        ("Sun, 06 Nov 1994 08:49:37 UTC", None),
        ("Sun, 6 Nov 1994 08:49:37 GMT", None),
        ("Sun, 06 Nov 94 08:49:37 GMT", None),
        ("Sunday, 06 Nov 1994 08:49:37 GMT", None),
        ("Sun, 06-Nov-94 08:49:37 GMT", None),
        ("Sun Nov 6 08:49:37 1994", None),
        ("Sun, 06 Foo 1994 08:49:37 GMT", None),
        ("Sun, 00 Nov 1994 08:49:37 GMT", None),
        ("Sun, 31 Nov 1994 08:49:37 GMT", None),
        ("Tue, 29 Feb 1994 08:49:37 GMT", None),
        ("Sun, 06 Nov 1994 24:00:00 GMT", None),
        ("Sun, 06 Nov 1994 08:60:00 GMT", None),
        ("Sun, 06 Nov 1994 08:49:61 GMT", None),
        ("Sat, 01 Jan 0000 00:00:00 GMT", None),
        ("Friday, 31-Feb-94 08:49:37 GMT", None),
        ("Sun Nov 31 08:49:37 1994", None),
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, NOW) == expected


def test_retry_after_date_in_the_future_and_leap_seconds() -> None:
    assert parse_retry_after("Tue, 29 Feb 2028 12:00:00 GMT", NOW_2025) == (
        utc(2028, 2, 29, 12) - NOW_2025
    )
    # Second 60 (a leap second) is the next minute's first second, as in POSIX time.
    assert parse_http_date("Wed, 31 Dec 2025 23:59:60 GMT", NOW_2025) == utc(2026, 1, 1)


def test_retry_after_whole_and_byte_at_a_time_prefixes() -> None:
    # A header value is only ever parsed whole: every proper prefix of a date is
    # rejected (no partial parse), and so is the date with trailing garbage.
    whole = "Sun, 06 Nov 1994 08:49:37 GMT"
    assert parse_retry_after(whole, NOW) == 30.0
    for end in range(1, len(whole)):
        assert parse_retry_after(whole[:end], NOW) is None, whole[:end]
    assert parse_retry_after(whole + "\x00", NOW) is None


@pytest.mark.parametrize(
    ("two_digits", "year"),
    [
        ("25", 2025),
        ("70", 2070),  # 45 years ahead: not "more than 50 years in the future"
        ("75", 2075),  # exactly 50 years ahead: still taken as is
        ("76", 1976),  # 51 years ahead: the most recent past year instead
        ("94", 1994),
        ("00", 2000),
    ],
)
def test_rfc850_two_digit_years(two_digits: str, year: int) -> None:
    value = f"Wednesday, 01-Jan-{two_digits} 00:00:00 GMT"
    assert parse_http_date(value, NOW_2025) == utc(year, 1, 1)


def test_rfc850_century_follows_the_calendar_year_of_now() -> None:
    # The year of ``now`` is guessed from the mean year length, which is one off
    # just before and just after some New Years; both corrections matter here.
    new_year_2000 = utc(2000, 1, 1)
    assert parse_http_date("Saturday, 01-Jan-50 00:00:00 GMT", new_year_2000) == utc(2050, 1, 1)
    assert parse_http_date("Saturday, 01-Jan-50 00:00:00 GMT", new_year_2000 - 1) == utc(1950, 1, 1)
    late_1972 = utc(1973, 1, 1) - 8640  # 31 Dec 1972, 21:36 UTC
    assert parse_http_date("Monday, 01-Jan-23 00:00:00 GMT", late_1972) == utc(1923, 1, 1)
    assert parse_http_date("Monday, 01-Jan-22 00:00:00 GMT", late_1972) == utc(2022, 1, 1)


@given(st.text())
def test_parse_retry_after_never_raises(text: str) -> None:
    result = parse_retry_after(text, NOW)
    assert result is None or (math.isfinite(result) and result >= 0.0)


@st.composite
def date_like(draw: st.DrawFn) -> str:
    """Texts shaped like the three HTTP-date formats, with fields in and out of range."""
    day_name = draw(st.sampled_from(["Sun", "Wed", "Sunday", "Wednesday", "Xyz"]))
    month = draw(st.sampled_from(["Jan", "Feb", "Nov", "Dec", "foo"]))
    day = draw(st.integers(1, 28) | st.integers(0, 99))
    year = draw(st.integers(0, 9999))
    hour, minute, second = (draw(st.integers(0, 23) | st.integers(0, 99)) for _ in range(3))
    time_of_day = f"{hour:02}:{minute:02}:{second:02}"
    fmt = draw(st.sampled_from(["imf", "rfc850", "asctime"]))
    if fmt == "imf":
        return f"{day_name}, {day:02} {month} {year:04} {time_of_day} GMT"
    if fmt == "rfc850":
        return f"{day_name}, {day:02}-{month}-{year % 100:02} {time_of_day} GMT"
    return f"{day_name} {month} {day:2} {time_of_day} {year:04}"


@given(date_like(), st.floats(min_value=-2e9, max_value=4e9))
def test_parse_http_date_never_raises_on_date_like_text(text: str, now: float) -> None:
    result = parse_http_date(text, now)
    assert result is None or math.isfinite(result)


@given(st.integers(min_value=-62135596800, max_value=253402300799))
def test_imf_fixdate_round_trips(timestamp: int) -> None:
    # email.utils is fine in a test; the core must not import it (it imports socket).
    text = formatdate(timestamp, usegmt=True)
    assert parse_http_date(text, NOW) == timestamp
    assert parse_retry_after(text, float(timestamp) - 1.5) == 1.5


# --- The decision table -----------------------------------------------------------

refused = ConnectionFailed("connection refused")
reset_before_send = NetworkError("connection reset", request_sent=False)
reset_after_send = NetworkError("connection reset")
connect_timeout = ConnectTimeout("connect timed out")
read_timeout = ReadTimeout("read timed out")
timeout = TimeoutError("timed out")
not_transport = ValueError("bad JSON")
builtin_timeout = builtins.TimeoutError("not ours")
server_error = ServerError("boom", status=503)  # a parsed error is not a transport error

IDEMPOTENT = ("GET", "delete")
UNSAFE = ("POST", "patch")

# (status, error) -> (retry if idempotent or keyed, retry a bare POST)
TABLE: list[tuple[int | None, BaseException | None, bool, bool]] = [
    (200, None, False, False),
    (202, None, False, False),
    (204, None, False, False),
    (301, None, False, False),
    (400, None, False, False),
    (401, None, False, False),
    (404, None, False, False),
    (408, None, False, False),
    (409, None, False, False),
    (429, None, True, True),  # rate-limited requests are rejected before any effect
    (500, None, False, False),  # a permanent server bug for REST
    (501, None, False, False),
    (502, None, True, False),
    (503, None, True, False),
    (504, None, True, False),
    (505, None, False, False),
    (None, refused, True, True),
    (None, reset_before_send, True, True),
    (None, connect_timeout, True, True),
    (None, reset_after_send, True, False),
    (None, read_timeout, True, False),
    (None, timeout, True, False),
    (None, not_transport, False, False),
    (None, builtin_timeout, False, False),
    (None, server_error, False, False),
    (503, not_transport, False, False),  # the error wins over the status
    (200, reset_after_send, True, False),  # body lost after the status line
]


def retried(
    method: str,
    *,
    status: int | None = None,
    error: BaseException | None = None,
    idempotency_key: bool = False,
) -> bool:
    """Whether a REST call's first failed attempt is retried, as a call decides it."""
    rules = rest_rules(method, idempotency_key=idempotency_key)
    return decide(POLICY, rules, attempt=1, status=status, error=error).retry


@pytest.mark.parametrize("row", TABLE)
@pytest.mark.parametrize("method", IDEMPOTENT + UNSAFE)
@pytest.mark.parametrize("idempotency_key", [False, True])
def test_the_rest_table(
    row: tuple[int | None, BaseException | None, bool, bool], method: str, idempotency_key: bool
) -> None:
    status, error, idempotent, unsafe = row
    expected = idempotent if (method in IDEMPOTENT or idempotency_key) else unsafe
    result = retried(method, status=status, error=error, idempotency_key=idempotency_key)
    assert result is expected


@pytest.mark.parametrize("method", ["GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE", "get"])
def test_idempotent_methods_per_rfc_9110(method: str) -> None:
    assert retried(method, status=502)
    assert retried(method, error=read_timeout)
    assert not retried(method, status=500)


@pytest.mark.parametrize("method", ["POST", "PATCH", "post", "CONNECT", "PROPFIND"])
def test_other_methods_are_not_idempotent(method: str) -> None:
    assert not retried(method, status=502)
    assert retried(method, status=502, idempotency_key=True)
    assert retried(method, error=refused)


# (status, error) -> (task socket, event stream, the waiter's GET of a run)
R, S, G = Next.RETRY, Next.RESOLVE, Next.FALL_BACK_TO_GET
OTHER_CONTEXTS: list[tuple[int | None, BaseException | None, Next, Next, Next]] = [
    (99, None, S, G, R),
    (204, None, S, G, R),  # not the stream's 200, not a run
    (301, None, S, G, R),
    (400, None, S, G, S),
    (401, None, S, S, S),  # polling would be refused too
    (403, None, S, S, S),
    (404, None, S, G, S),  # the stream refuses the ids; a GET says there is no such run
    (408, None, S, G, R),
    (421, None, S, G, S),
    (425, None, S, G, R),
    (429, None, R, R, R),
    (500, None, R, R, R),  # a task socket answers 500 while its server restarts
    (501, None, R, R, R),
    (502, None, R, R, R),
    (503, None, R, R, R),
    (600, None, R, R, R),
    (None, refused, R, R, R),
    (None, reset_after_send, R, R, R),
    (None, read_timeout, R, R, R),
    (None, not_transport, S, R, R),
]


@pytest.mark.parametrize("row", OTHER_CONTEXTS)
def test_the_socket_stream_and_get_tables(
    row: tuple[int | None, BaseException | None, Next, Next, Next],
) -> None:
    status, error, socket, stream, get = row
    outcome = classify(status, error)
    assert (TASK_SOCKET[outcome], EVENT_STREAM[outcome], CONFIRMATION_GET[outcome]) == (
        socket,
        stream,
        get,
    )


TABLES = [REST_IDEMPOTENT, REST_NON_IDEMPOTENT, TASK_SOCKET, EVENT_STREAM, CONFIRMATION_GET]


@pytest.mark.parametrize("table", TABLES)
def test_every_table_answers_every_outcome_and_is_read_only(table: dict[Outcome, Next]) -> None:
    assert set(table) == set(Outcome)
    assert all(isinstance(action, Next) for action in table.values())
    with pytest.raises(TypeError):
        table[Outcome.OTHER] = Next.RETRY


def test_only_the_stream_falls_back_to_get_and_only_requests_check_the_method() -> None:
    assert [Next.FALL_BACK_TO_GET in table.values() for table in TABLES] == [
        False,
        False,
        False,
        True,
        False,
    ]
    assert rest_rules("get") is rest_rules("POST", idempotency_key=True) is REST_IDEMPOTENT
    assert rest_rules("POST") is REST_NON_IDEMPOTENT


@pytest.mark.parametrize(
    ("status", "error", "outcome"),
    [
        (100, None, Outcome.ANSWERED),
        (399, None, Outcome.ANSWERED),
        (99, None, Outcome.ANSWERED),  # no server sends it; not an error status either
        (0, None, Outcome.ANSWERED),
        (600, None, Outcome.SERVER_ERROR),  # a server that broke the protocol
        (401, None, Outcome.UNAUTHORIZED),
        (403, None, Outcome.UNAUTHORIZED),
        (408, None, Outcome.DEFERRED),
        (425, None, Outcome.DEFERRED),
        (429, None, Outcome.RATE_LIMITED),
        (418, None, Outcome.CLIENT_ERROR),
        (404, None, Outcome.CLIENT_ERROR),
        (503, None, Outcome.UNAVAILABLE),
        (599, None, Outcome.SERVER_ERROR),
        (None, refused, Outcome.NOT_SENT),
        (None, connect_timeout, Outcome.NOT_SENT),
        (None, reset_after_send, Outcome.CONNECTION_LOST),
        (None, read_timeout, Outcome.TIMED_OUT),
        (None, ConnectionFailed("odd", request_sent=True), Outcome.CONNECTION_LOST),
        (None, not_transport, Outcome.OTHER),
        (None, server_error, Outcome.OTHER),  # a parsed error is not a transport error
    ],
)
def test_classify(status: int | None, error: BaseException | None, outcome: Outcome) -> None:
    assert classify(status, error) is outcome


def test_classify_needs_something() -> None:
    with pytest.raises(ValueError, match="status or an error"):
        classify()
    with pytest.raises(ValueError, match="status or an error"):
        decide(POLICY, REST_IDEMPOTENT, attempt=1)


# --- decide() ---------------------------------------------------------------------

POLICY = Backoff(jitter=False)


def test_decide_retries_with_the_policy_delay() -> None:
    decisions = [
        decide(POLICY, rest_rules("GET"), attempt=attempt, status=503)
        for attempt in range(1, POLICY.max_attempts + 1)
    ]
    assert [d.retry for d in decisions] == [True, True, True, False]
    assert [d.delay for d in decisions] == [0.25, 0.5, 1.0, 0.0]
    assert decisions[0] == RetryDecision(retry=True, delay=0.25, reason="HTTP 503")
    assert decisions[-1].reason == "attempt budget exhausted (4 of 4) after HTTP 503"


def test_decide_jitters_with_the_given_rng() -> None:
    decision = decide(Backoff(), rest_rules("GET"), attempt=1, status=502, rng=random.Random(0))
    assert decision.retry
    assert decision.delay == pytest.approx(0.21110546288126203)


def test_decide_single_attempt_policy_never_retries() -> None:
    decision = decide(Backoff(max_attempts=1), rest_rules("GET"), attempt=1, error=refused)
    assert not decision.retry
    assert decision.reason.startswith("attempt budget exhausted")


@pytest.mark.parametrize("wait", [7.0, 0.0, 2.5, 30])
@pytest.mark.parametrize("status", [429, 503])
def test_decide_honours_retry_after_exactly(wait: float, status: int) -> None:
    decision = decide(
        POLICY,
        rest_rules("GET"),
        attempt=1,
        status=status,
        retry_after=wait,
        rng=random.Random(0),
    )
    assert decision == RetryDecision(
        retry=True, delay=wait, reason=f"HTTP {status} with Retry-After {wait:g} s"
    )
    assert isinstance(decision.delay, float)


def test_decide_never_waits_less_than_nothing() -> None:
    decision = decide(POLICY, rest_rules("GET"), attempt=1, status=429, retry_after=-3.0)
    assert (decision.retry, decision.delay) == (True, 0.0)


def test_decide_retries_post_after_429_with_retry_after() -> None:
    decision = decide(POLICY, rest_rules("POST"), attempt=1, status=429, retry_after=3.0)
    assert (decision.retry, decision.delay) == (True, 3.0)


def test_decide_gives_up_when_retry_after_is_too_long() -> None:
    decision = decide(POLICY, rest_rules("GET"), attempt=1, status=429, retry_after=61.0)
    assert not decision.retry
    assert decision.delay == 0.0
    assert decision.reason == "HTTP 429 with Retry-After 61 s, longer than the 60 s we wait"
    assert DEFAULT_MAX_RETRY_AFTER == 60.0
    forever = decide(POLICY, rest_rules("GET"), attempt=1, status=503, retry_after=math.inf)
    assert not forever.retry
    exactly_at_limit = decide(
        POLICY, rest_rules("GET"), attempt=1, status=429, retry_after=5.0, max_retry_after=5
    )
    assert exactly_at_limit.retry
    assert exactly_at_limit.delay == 5.0


def test_decide_does_not_retry_what_the_table_refuses_whatever_the_wait() -> None:
    post_503 = decide(POLICY, rest_rules("POST"), attempt=1, status=503, retry_after=2.0)
    assert not post_503.retry
    assert post_503.reason == "HTTP 503 is not retried"
    exhausted = decide(POLICY, rest_rules("GET"), attempt=4, status=429, retry_after=2.0)
    assert not exhausted.retry
    assert exhausted.reason == "attempt budget exhausted (4 of 4) after HTTP 429"


@pytest.mark.parametrize(
    ("status", "wait"),
    [(429, math.nan), (429, None), (502, 9.0), (500, 9.0)],
)
def test_decide_ignores_unusable_retry_after(status: int, wait: float | None) -> None:
    decision = decide(POLICY, rest_rules("GET"), attempt=2, status=status, retry_after=wait)
    if decision.retry:
        assert decision.delay == 0.5  # the policy's second delay
        assert decision.reason == f"HTTP {status}"


def test_decide_uses_the_idempotent_table_for_keyed_posts() -> None:
    bare = decide(POLICY, rest_rules("POST"), attempt=1, error=read_timeout)
    keyed = decide(POLICY, rest_rules("POST", idempotency_key=True), attempt=1, error=read_timeout)
    assert not bare.retry
    assert bare.reason == "ReadTimeout: read timed out is not retried"
    assert keyed.retry
    assert keyed.delay == 0.25


def test_decide_without_waits_keeps_the_budget() -> None:
    fast = POLICY.without_waits()
    decision = decide(fast, rest_rules("GET"), attempt=3, error=refused)
    assert decision == RetryDecision(
        retry=True, delay=0.0, reason="ConnectionFailed: connection refused"
    )
    assert not decide(fast, rest_rules("GET"), attempt=4, error=refused).retry


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (200, None),
        (404, None),
        (None, ValueError()),
        (None, ValueError("x")),
        (None, refused),
        (None, NetworkError("")),
    ],
)
@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize("attempt", [1, 2, 10])
def test_decide_reasons_are_never_empty(
    status: int | None, error: BaseException | None, method: str, attempt: int
) -> None:
    decision = decide(POLICY, rest_rules(method), attempt=attempt, status=status, error=error)
    assert decision.reason.strip()
    assert decision.delay >= 0.0
    if not decision.retry:
        assert decision.delay == 0.0


def test_decide_reason_falls_back_to_the_exception_name() -> None:
    decision = decide(POLICY, rest_rules("GET"), attempt=1, error=ValueError())
    assert decision.reason == "ValueError is not retried"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"attempt": 0}, "attempt must be >= 1"),
        ({"max_retry_after": -1.0}, "max_retry_after"),
        ({"max_retry_after": math.nan}, "max_retry_after"),
    ],
)
def test_decide_rejects_bad_arguments(kwargs: dict[str, float], message: str) -> None:
    arguments: dict[str, float] = {"attempt": 1, **kwargs}
    with pytest.raises(ValueError, match=message):
        decide(POLICY, rest_rules("GET"), status=503, **arguments)  # type: ignore[arg-type]
