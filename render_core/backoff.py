"""Retry math and every retry decision: backoff schedules, ``Retry-After``, the tables.

Theory of operation
-------------------
Everything here is a pure function of its arguments. What goes in: the outcome of
one attempt (an HTTP status, or the transport error that replaced the response),
the context it happened in, how many attempts were made, the server's wait (the
``Retry-After`` header, already read as seconds by the caller) and, for jitter, a
random source ``rng`` (anything with ``.random() -> float``, such as
``random.Random``). What comes out: what to do :class:`Next`, and for a retry a
:class:`RetryDecision` saying how many seconds to wait first. This module never
sleeps, never reads the clock and never draws randomness of its own; the loop that
runs a call (:func:`render_core.effects.send_with_retries`) yields a ``Sleep``
effect with the decided delay, and a driver does the waiting.

Four layers, each usable alone:

1. :class:`Backoff` is the schedule: capped exponential growth,
   ``delay(n) = min(cap, base * factor**n)`` for the ``n``-th retry (``n = 0``
   first), optionally with "full jitter" (a uniform draw in ``[0, delay(n)]``; see
   https://aws.amazon.com/blogs/architecture/exponential-backoff-and-jitter/).
   :func:`capped_growth` is that formula alone; the task retry policy of
   :mod:`render_core.lifecycle` grows by it too.
2. :func:`classify` maps a status or an error to an :class:`Outcome`.
3. One table per context says what to do after each outcome: a REST call
   (:data:`REST_IDEMPOTENT`, :data:`REST_NON_IDEMPOTENT`, chosen by
   :func:`rest_rules`), a task-socket call (:data:`TASK_SOCKET`), an event stream
   (:data:`EVENT_STREAM`) and the waiter's ``GET`` of a run
   (:data:`CONFIRMATION_GET`). All five are columns of one grid, so "do we retry a
   500 here?" has one answer, found in one place.
4. :func:`decide` combines a table with the attempt budget and the server's
   ``Retry-After`` (RFC 9110 section 10.2.3,
   https://www.rfc-editor.org/rfc/rfc9110#section-10.2.3, parsed by
   :func:`parse_retry_after`).

The official client retries nothing on REST and ignores ``Retry-After``;
this module is the fix. ``POST /v1/task-runs`` is only
retried when it provably never reached the server, when the server rate-limited it,
or when the caller sent an idempotency key, so no run is ever started
twice by a retry.
"""

from __future__ import annotations

import enum
import functools
import math
import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Final, Protocol

from render_core.errors import NetworkError, TimeoutError
from render_core.values import Value, init_fields

__all__ = [
    "DEFAULT_BASE",
    "DEFAULT_CAP",
    "DEFAULT_FACTOR",
    "DEFAULT_MAX_ATTEMPTS",
    "DEFAULT_MAX_RETRY_AFTER",
    "CONFIRMATION_GET",
    "EVENT_STREAM",
    "IDEMPOTENT_METHODS",
    "REST_IDEMPOTENT",
    "REST_NON_IDEMPOTENT",
    "TASK_SOCKET",
    "TASK_SOCKET_BACKOFF",
    "Next",
    "Backoff",
    "Outcome",
    "RandomSource",
    "RetryDecision",
    "capped_growth",
    "classify",
    "decide",
    "parse_http_date",
    "parse_retry_after",
    "rest_rules",
]

# The commonest failure is a pooled keep-alive connection the server closed while it
# sat idle: the first retry should cost a user nothing noticeable. A quarter second
# is also long enough for a load balancer to route around one bad instance.
DEFAULT_BASE: Final[float] = 0.25

# Doubling is the textbook growth rate: each wait covers the time already spent
# waiting, so the load retries put on a struggling server halves at every step.
DEFAULT_FACTOR: Final[float] = 2.0

# No single wait inside one SDK call should look like a hang. The default budget
# never reaches it (the third retry waits at most 1 s); it bounds policies that
# raise ``max_attempts`` but keep the other defaults.
DEFAULT_CAP: Final[float] = 10.0

# One try plus three retries: waits of at most 0.25 + 0.5 + 1 = 1.75 s in total
# (half that on average with jitter), which rides out a dropped connection or a
# brief overload, while a real outage still surfaces as an error within ~2 s plus
# the request timeouts, and the caller's own policy decides what to do next.
DEFAULT_MAX_ATTEMPTS: Final[int] = 4

# Render's rate limits are counted per minute (``RateLimit-Reset``),
# so an honest ``Retry-After`` is at most about a minute. A server asking for more
# is shedding load for longer than a user would wait inside one call without
# thinking it hung: give up and surface ``RateLimitError.retry_after`` instead, so
# the caller decides.
DEFAULT_MAX_RETRY_AFTER: Final[float] = 60.0

# RFC 9110 section 9.2.2: repeating one of these has the same intended effect on
# the server as sending it once, so a retry cannot duplicate anything.
IDEMPOTENT_METHODS: Final[frozenset[str]] = frozenset(
    {"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"}
)


class RandomSource(Protocol):
    """Where jitter comes from: ``random.Random`` or anything with its ``random()``."""

    def random(self) -> float:
        """A float in ``[0.0, 1.0)``."""
        ...


def capped_growth(base: float, factor: float, n: int, cap: float) -> float:
    """``min(cap, base * factor**n)``: the growth of every backoff here, for any ``n >= 0``.

    ``base``, ``factor`` and ``cap`` are finite and non-negative. A ``factor`` below
    1 shrinks instead (a task may scale its retry delays down). Never raises
    ``OverflowError``, however large ``n`` is, and never computes a huge power.
    """
    if base == 0.0 or n == 0 or factor == 1.0:
        return float(min(cap, base))
    if factor < 1.0:
        try:
            return float(min(cap, base * float(factor) ** n))
        except OverflowError:  # an ``n`` beyond the float range: the limit is 0
            return 0.0
    if base >= cap:
        return float(cap)
    # From here 0 < base < cap and factor > 1. Compare in log space first: past
    # this many retries the cap is reached, whatever ``n`` is (an int compared
    # with a float is exact in Python, so a 400-digit ``n`` is fine too).
    retries_to_cap = (math.log(cap) - math.log(base)) / math.log(factor)
    if n > retries_to_cap:
        return float(cap)
    try:
        grown = float(factor) ** n
    except OverflowError:
        # Only a tiny base and a huge cap get here (cap / base beyond the float
        # range); the product itself is about in range, so take it via logarithms,
        # clamped at log(cap) so that rounding cannot push exp() past the float range.
        log_delay = math.log(base) + n * math.log(factor)
        return min(float(cap), math.exp(min(log_delay, math.log(cap))))
    return float(min(cap, base * grown))


def _finite_at_least(name: str, value: float, minimum: float) -> float:
    if not (math.isfinite(value) and value >= minimum):
        raise ValueError(f"Backoff.{name} must be a finite number >= {minimum:g}, got {value!r}")
    return value


def _attempts(value: int) -> int:
    # ``bool`` is an ``int`` but ``max_attempts=True`` is surely a mistake.
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"Backoff.max_attempts must be an integer >= 1, got {value!r}")
    return value


class Backoff(Value):
    """Capped exponential backoff: delay(n) = min(cap, base * factor**n), n = 0 for the first retry.

    ``max_attempts`` counts every attempt, the first one included, so a policy
    allows ``max_attempts - 1`` retries. With ``jitter`` and an ``rng``, each delay
    is drawn uniformly from ``[0, delay(n)]`` ("full jitter": clients that failed
    together do not retry together); without an ``rng`` the schedule is
    deterministic even when ``jitter`` is set.

    Raises ``ValueError`` naming the field when ``base`` or ``cap`` is negative,
    ``factor`` is below 1, ``max_attempts`` is below 1, or a number is not finite.
    """

    __slots__ = ("base", "factor", "cap", "jitter", "max_attempts")  # noqa: RUF023 - repr order
    base: float
    factor: float
    cap: float
    jitter: bool
    max_attempts: int

    def __init__(
        self,
        *,
        base: float = DEFAULT_BASE,
        factor: float = DEFAULT_FACTOR,
        cap: float = DEFAULT_CAP,
        jitter: bool = True,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    ) -> None:
        init_fields(
            self,
            base=_finite_at_least("base", base, 0.0),
            factor=_finite_at_least("factor", factor, 1.0),
            cap=_finite_at_least("cap", cap, 0.0),
            jitter=jitter,
            max_attempts=_attempts(max_attempts),
        )

    def replace(self, **changes: Any) -> Backoff:
        """A copy with ``changes`` applied (and checked)."""
        fields = {name: getattr(self, name) for name in self.__slots__}
        return Backoff(**{**fields, **changes})

    def delay(self, retry_number: int, rng: RandomSource | None = None) -> float:
        """Seconds to wait before retry ``retry_number`` (0 for the first retry).

        Never negative, never above ``cap``, and safe for any retry number (no
        ``OverflowError``). Raises ``ValueError`` for a negative ``retry_number``.
        """
        if retry_number < 0:
            raise ValueError(f"retry_number must be >= 0, got {retry_number!r}")
        ceiling = capped_growth(self.base, self.factor, retry_number, self.cap)
        if self.jitter and rng is not None:
            return ceiling * rng.random()
        return ceiling

    def without_waits(self) -> Backoff:
        """The same attempt budget with every delay 0: for tests (as in stamina)."""
        return self.replace(base=0.0, cap=0.0)


# The transient-retry schedule of the official task-socket client,
# kept exactly: 0.25, 0.5, 1, 2, 4, 8, then 16 s x18 (303.75 s in all) "to survive
# server restarts". No jitter: one worker per run talks to its own server.
TASK_SOCKET_BACKOFF: Final[Backoff] = Backoff(
    base=0.25, factor=2.0, cap=16.0, max_attempts=25, jitter=False
)


# --- Retry-After ----------------------------------------------------------------

_SECONDS = re.compile(r"[0-9]+(?:\.[0-9]+)?")
# Spelled out: ``calendar.month_abbr`` follows the process locale, HTTP does not.
_MONTHS: Final[Mapping[str, int]] = MappingProxyType(
    {
        name: number
        for number, name in enumerate(
            ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"),
            start=1,
        )
    }
)
_MONTH = "(?P<month>" + "|".join(_MONTHS) + ")"
_DAY_NAME = "(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)"
_LONG_DAY_NAME = "(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)"
_TIME = "(?P<hour>[0-9]{2}):(?P<minute>[0-9]{2}):(?P<second>[0-9]{2})"
# RFC 9110 section 5.6.7. The day name is not checked against the date: it carries
# no information, and a sender that got it wrong still meant the date.
_HTTP_DATE_PATTERNS = (
    # IMF-fixdate: Sun, 06 Nov 1994 08:49:37 GMT
    rf"{_DAY_NAME}, (?P<day>[0-9]{{2}}) {_MONTH} (?P<year>[0-9]{{4}}) {_TIME} GMT",
    # obsolete RFC 850: Sunday, 06-Nov-94 08:49:37 GMT
    rf"{_LONG_DAY_NAME}, (?P<day>[0-9]{{2}})-{_MONTH}-(?P<year2>[0-9]{{2}}) {_TIME} GMT",
    # obsolete asctime: Sun Nov  6 08:49:37 1994
    rf"{_DAY_NAME} {_MONTH} (?P<day>[0-9]{{2}}| [0-9]) {_TIME} (?P<year>[0-9]{{4}})",
)


@functools.cache
def _http_dates() -> tuple[re.Pattern[str], ...]:
    # Compiled on first use: a worker's task-socket calls never read a date, and this
    # module is on its cold-start path.
    return tuple(re.compile(pattern, re.IGNORECASE) for pattern in _HTTP_DATE_PATTERNS)


# The mean Gregorian year; only used for a first guess at the current year.
_MEAN_YEAR_SECONDS: Final[float] = 365.2425 * 86400


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait according to a ``Retry-After`` header value, or None.

    Accepts both forms of RFC 9110 section 10.2.3: ``delay-seconds`` (a
    non-negative integer; a non-negative decimal such as ``"1.5"`` is tolerated)
    and an HTTP-date in any of the three formats of section 5.6.7, for which the
    result is ``max(0, date - now)``. ``now`` is seconds since the Unix epoch.
    Leading and trailing whitespace is ignored. Returns None for a missing,
    malformed, negative or non-finite value; never raises for any text.
    """
    if value is None:
        return None
    text = value.strip()
    if _SECONDS.fullmatch(text):
        seconds = float(text)
        return seconds if math.isfinite(seconds) else None
    timestamp = parse_http_date(text, now)
    if timestamp is None:
        return None
    return max(0.0, timestamp - now)


def parse_http_date(value: str, now: float) -> float | None:
    """An HTTP-date (RFC 9110 section 5.6.7) as seconds since the Unix epoch, or None.

    All three formats are accepted (IMF-fixdate, obsolete RFC 850, asctime), with
    leading and trailing whitespace. ``now`` (seconds since the epoch) is only used
    to give an RFC 850 two-digit year its century: a year more than 50 years after
    ``now`` means the most recent past year with those digits. Returns None for
    anything malformed or for an impossible date (30 Feb, hour 24...); never raises
    for any text, given a finite ``now`` between the years 1 and 9948.
    """
    text = value.strip()
    for pattern in _http_dates():
        match = pattern.fullmatch(text)
        if match is not None:
            break
    else:
        return None
    fields = match.groupdict()
    month = _MONTHS[fields["month"].capitalize()]
    day, hour, minute, second = (int(fields[name]) for name in ("day", "hour", "minute", "second"))
    if fields.get("year2") is not None:
        year = _expand_two_digit_year(int(fields["year2"]), now)
    else:
        year = int(fields["year"])
    # Second 60 is a leap second (RFC 9110 section 5.6.7); timegm counts it as the
    # next minute's first second, which is what POSIX time does anyway.
    import calendar  # here, not at the top: off a worker's cold-start path

    if not (
        year >= 1
        and 1 <= day <= calendar.monthrange(year, month)[1]
        and hour <= 23
        and minute <= 59
        and second <= 60
    ):
        return None
    return float(calendar.timegm((year, month, day, hour, minute, second)))


def _expand_two_digit_year(two_digits: int, now: float) -> int:
    """RFC 9110 section 5.6.7: a two-digit year more than 50 years in the future
    means the most recent past year with the same last two digits."""
    current = _year_of(now)
    return current + 50 - (current + 50 - two_digits) % 100


def _year_of(now: float) -> int:
    """The UTC calendar year of timestamp ``now``, without ``time`` or ``datetime``."""
    import calendar

    year = 1970 + math.floor(now / _MEAN_YEAR_SECONDS)
    # Calendar years drift around the mean by a day or so, so near New Year the
    # guess can be one off either way.
    if calendar.timegm((year, 1, 1, 0, 0, 0)) > now:
        year -= 1
    elif calendar.timegm((year + 1, 1, 1, 0, 0, 0)) <= now:
        year += 1
    return year


# --- What happened, and what to do about it ---------------------------------------


class Outcome(enum.Enum):
    """What happened to one attempt, as far as retrying is concerned."""

    #: Below 400: the server answered without an error status (1xx-3xx, or a
    #: status under 100 that no server should send); nothing was refused.
    ANSWERED = "answered"
    #: 401, 403: the credentials are refused, and will be on every request.
    UNAUTHORIZED = "unauthorized"
    #: 408, 425: the server did not process the request this time and says that
    #: the same request may succeed later.
    DEFERRED = "deferred"
    #: 429: the server refused the request *before acting on it*.
    RATE_LIMITED = "rate limited"
    #: The other 4xx: the request is wrong and will stay wrong.
    CLIENT_ERROR = "client error"
    #: 502, 503, 504: a proxy or the server is briefly unable to serve.
    UNAVAILABLE = "unavailable"
    #: 500, 501, the other 5xx and anything above 599: the server failed while
    #: handling the request.
    SERVER_ERROR = "server error"
    #: The request provably never left this process (connection refused, DNS,
    #: connect timeout): nothing can have happened on the server.
    NOT_SENT = "not sent"
    #: The connection failed after the request may have been sent.
    CONNECTION_LOST = "connection lost"
    #: No answer in time after the request was sent: it may or may not have run.
    TIMED_OUT = "timed out"
    #: An error that is not one of our transport errors (a transport that broke
    #: its contract, a bug).
    OTHER = "other"


class Next(enum.Enum):
    """What to do next after an attempt, as one context's table says."""

    #: Try the same request again, after a wait.
    RETRY = "retry"
    #: Stop: surface the result, or the error, to whoever is waiting for it.
    RESOLVE = "resolve"
    #: Stop streaming: follow each run with ``GET /v1/task-runs/{id}`` instead.
    FALL_BACK_TO_GET = "fall back to GET"


_RETRY, _RESOLVE, _GET = Next.RETRY, Next.RESOLVE, Next.FALL_BACK_TO_GET
# One row of the grid below: REST idempotent, REST not idempotent, socket, stream, GET.
_Row = tuple[Next, Next, Next, Next, Next]

# Every retry decision of the SDK, in one place (h11 style: data, not scattered
# ``if``s). A row per outcome; a column per context:
#
# - REST: a call of the REST API (render_core.flows), idempotent (GET, DELETE, or a
#   POST with an idempotency key: the server deduplicates) or not (a bare POST,
#   which may start a run twice if repeated after the server saw it);
# - socket: a task process's call on its task socket (render_core.callback);
# - stream: the answer that opens a task-run event stream, or its end
#   (render_core.waiter);
# - GET: the waiter's GET of one run, to confirm it exists or to see its state.
#
# A success never comes here: the callers return it first.
_GRID: dict[Outcome, _Row] = {
    # REST and socket surface an answer that is not the success as an error. A
    # stream refused with a redirect or an odd status will not be served by asking
    # again: poll. A GET answered with something that is not a run (a redirect, a
    # 200 with a broken body) is asked again later.
    Outcome.ANSWERED: (_RESOLVE, _RESOLVE, _RESOLVE, _GET, _RETRY),
    # Polling would be refused just the same: end the wait with the error.
    Outcome.UNAUTHORIZED: (_RESOLVE, _RESOLVE, _RESOLVE, _RESOLVE, _RESOLVE),
    # REST and the socket surface them as the client errors they are (Render's API
    # is not known to send them); the stream falls back as for any other 4xx. Only
    # the waiter's GET, cheap and repeated anyway, takes the server at its word.
    Outcome.DEFERRED: (_RESOLVE, _RESOLVE, _RESOLVE, _GET, _RETRY),
    # Rejected before any effect, so even a bare POST may be repeated.
    Outcome.RATE_LIMITED: (_RETRY, _RETRY, _RETRY, _RETRY, _RETRY),
    # The request is wrong. The stream endpoint refusing these ids (400, 404) does
    # not mean the runs cannot be polled; a GET answered 404 means there is no
    # such run.
    Outcome.CLIENT_ERROR: (_RESOLVE, _RESOLVE, _RESOLVE, _GET, _RESOLVE),
    # A short outage: every context tries again, except a bare POST, which the
    # server may have acted on before the proxy gave up.
    Outcome.UNAVAILABLE: (_RETRY, _RESOLVE, _RETRY, _RETRY, _RETRY),
    # A REST 500 is a crash in a handler that would crash again on the same
    # input: a retry only multiplies the load and the latency before the same
    # error. A task socket answers 5xx while its server restarts, and the
    # official worker retries them; the waiter reconnects or asks again, within
    # its own budget.
    Outcome.SERVER_ERROR: (_RESOLVE, _RESOLVE, _RETRY, _RETRY, _RETRY),
    # Nothing reached the server: safe for every request.
    Outcome.NOT_SENT: (_RETRY, _RETRY, _RETRY, _RETRY, _RETRY),
    # The request may have been acted on: not a bare POST. Task-socket calls are
    # safe to repeat (``/run-subtask`` carries an idempotency key, ``/callback``
    # is idempotent); a stream reconnects with ``Last-Event-ID``.
    Outcome.CONNECTION_LOST: (_RETRY, _RESOLVE, _RETRY, _RETRY, _RETRY),
    Outcome.TIMED_OUT: (_RETRY, _RESOLVE, _RETRY, _RETRY, _RETRY),
    # REST and socket calls never catch these (they propagate as they are); a
    # waiter's stream or GET that broke this way is tried again like any other.
    Outcome.OTHER: (_RESOLVE, _RESOLVE, _RESOLVE, _RETRY, _RETRY),
}


def _column(index: int) -> Mapping[Outcome, Next]:
    return MappingProxyType({outcome: row[index] for outcome, row in _GRID.items()})


#: A REST call that is safe to repeat (idempotent method or idempotency key).
REST_IDEMPOTENT: Final = _column(0)
#: A REST call that might start something twice (a POST without a key).
REST_NON_IDEMPOTENT: Final = _column(1)
#: A task process's call on its task socket.
TASK_SOCKET: Final = _column(2)
#: Opening an event stream, or its end.
EVENT_STREAM: Final = _column(3)
#: The waiter's ``GET`` of one run.
CONFIRMATION_GET: Final = _column(4)


def classify(status: int | None = None, error: BaseException | None = None) -> Outcome:
    """The :class:`Outcome` of an attempt that answered ``status`` or raised ``error``.

    An ``error`` wins over a ``status``: a connection that broke after the status
    line still lost the response. Only our transport errors
    (:class:`~render_core.errors.NetworkError`,
    :class:`~render_core.errors.TimeoutError`) are retryable kinds; their
    ``request_sent`` tells whether the server may have seen the request. Raises
    ``ValueError`` when neither is given.
    """
    if error is not None:
        if isinstance(error, (NetworkError, TimeoutError)):
            if not error.request_sent:
                return Outcome.NOT_SENT
            return Outcome.TIMED_OUT if isinstance(error, TimeoutError) else Outcome.CONNECTION_LOST
        return Outcome.OTHER
    if status is None:
        raise ValueError("classify() needs a status or an error")
    if status < 400:
        return Outcome.ANSWERED
    if status < 500:
        return _CLIENT_STATUSES.get(status, Outcome.CLIENT_ERROR)
    return Outcome.UNAVAILABLE if status in (502, 503, 504) else Outcome.SERVER_ERROR


_CLIENT_STATUSES: Final[Mapping[int, Outcome]] = MappingProxyType(
    {
        401: Outcome.UNAUTHORIZED,
        403: Outcome.UNAUTHORIZED,
        408: Outcome.DEFERRED,
        425: Outcome.DEFERRED,
        429: Outcome.RATE_LIMITED,
    }
)


def rest_rules(method: str, *, idempotency_key: bool = False) -> Mapping[Outcome, Next]:
    """The table for a REST call: :data:`REST_IDEMPOTENT` or :data:`REST_NON_IDEMPOTENT`.

    - Idempotent methods (GET, HEAD, OPTIONS, TRACE, PUT, DELETE; RFC 9110
      section 9.2.2; ``method`` is case-insensitive): retry on 429, 502, 503, 504,
      any ``NetworkError`` and any ``TimeoutError``. Not on other 4xx, not on
      2xx/3xx, and not on 500/501: a 500 from the REST API is treated as a
      permanent server bug.
    - Other methods (POST): retry only when the request provably never reached
      the server (``ConnectionFailed``, a ``NetworkError`` with
      ``request_sent=False``, ``ConnectTimeout``) or on 429, because a
      rate-limited request is rejected before it has any effect. Never on 5xx or
      on a timeout or error after sending: the run may already exist.
    - ``idempotency_key=True`` (the caller sent one): the server deduplicates, so
      a POST is as safe as a GET and gets the idempotent table.
    - An error that is not a transport error (``ValueError``...): never.
    """
    if idempotency_key or method.upper() in IDEMPOTENT_METHODS:
        return REST_IDEMPOTENT
    return REST_NON_IDEMPOTENT


# --- The decision -----------------------------------------------------------------


class RetryDecision(Value):
    """What to do after a failed attempt: retry or not, after how long, and why."""

    __slots__ = ("retry", "delay", "reason")  # noqa: RUF023 - repr order
    retry: bool
    delay: float  # seconds to sleep before the next attempt (0 when retry is False)
    reason: str  # short human text: "HTTP 503", "attempt budget exhausted (...)"

    def __init__(self, *, retry: bool, delay: float, reason: str) -> None:
        init_fields(self, retry=retry, delay=delay, reason=reason)


def decide(
    policy: Backoff,
    rules: Mapping[Outcome, Next],
    *,
    attempt: int,
    status: int | None = None,
    error: BaseException | None = None,
    retry_after: float | None = None,
    rng: RandomSource | None = None,
    max_retry_after: float = DEFAULT_MAX_RETRY_AFTER,
) -> RetryDecision:
    """Retry or not, and after how long, given attempt number ``attempt`` failed.

    ``rules`` is the context's table (:func:`rest_rules`, :data:`TASK_SOCKET`...)
    and ``attempt`` counts the attempts made so far (1 after the first). The answer
    is yes iff the table says :attr:`Next.RETRY` for the attempt's
    :func:`classify` outcome, the budget ``policy.max_attempts`` is not spent, and
    the server's wait ``retry_after`` (seconds, as the caller read it from
    ``Retry-After``, e.g. with :func:`render_core.api.retry_after_seconds`;
    honoured on 429 and 503 only) is at most ``max_retry_after``. The delay is then
    that wait exactly (no jitter, never below 0) when there is one, else
    ``policy.delay(attempt - 1, rng)``. A NaN wait is ignored.

    Raises ``ValueError`` for ``attempt < 1``, a negative or NaN
    ``max_retry_after``, or when neither ``status`` nor ``error`` is given.
    """
    if attempt < 1:
        raise ValueError(f"attempt must be >= 1 (attempts made so far), got {attempt!r}")
    if not max_retry_after >= 0:
        raise ValueError(f"max_retry_after must be >= 0, got {max_retry_after!r}")
    what = _describe(status, error)
    server_wait = _server_wait(retry_after) if error is None and status in (429, 503) else None

    def no(reason: str) -> RetryDecision:
        return RetryDecision(retry=False, delay=0.0, reason=reason)

    then = rules[classify(status, error)]
    if then is not Next.RETRY:
        return no(f"{what} is not retried")
    if attempt >= policy.max_attempts:
        return no(f"attempt budget exhausted ({attempt} of {policy.max_attempts}) after {what}")
    if server_wait is None:
        return RetryDecision(retry=True, delay=policy.delay(attempt - 1, rng), reason=what)
    if server_wait > max_retry_after:
        return no(
            f"{what} with Retry-After {server_wait:g} s, longer than the {max_retry_after:g} s"
            " we wait"
        )
    return RetryDecision(
        retry=True, delay=server_wait, reason=f"{what} with Retry-After {server_wait:g} s"
    )


def _server_wait(seconds: float | None) -> float | None:
    if seconds is None or math.isnan(seconds):
        return None
    return max(0.0, float(seconds))


def _describe(status: int | None, error: BaseException | None) -> str:
    if error is None:
        return f"HTTP {status}"
    text = str(getattr(error, "message", "") or error)
    name = type(error).__name__
    return f"{name}: {text}" if text else name
