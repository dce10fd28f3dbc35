"""The machine behind "wait until these task runs finish".

:class:`RunWaiter` decides *what* to do; a transport does it. It owns no socket
and no clock: every method takes ``now`` (seconds, any monotonic origin) and the
transport reports what happened. The loop that drives it is short::

    waiter.add(run_ids, now)
    while not waiter.done:
        for action in waiter.poll(now):
            ...  # OpenStream -> start an SSE request; CloseStream -> drop it;
                 # Fetch -> GET the run (answer with fetch_response / fetch_failed)
        # wait for stream bytes, a response, or until waiter.next_deadline()
        waiter.stream_opened(...) / stream_data(...) / stream_closed(...)
        for result in waiter.take_results():
            ...  # each awaited run resolves exactly once

What it guarantees:

- **Shared streams.** Runs are grouped into batches (at most ``batch_size`` ids
  and ``max_url_length`` characters of URL); each batch uses one
  ``GET /v1/task-runs/events`` connection. Ids added while a batch's stream is
  open join it by re-subscribing once (after ``regroup_delay``), not by opening
  a connection per run.
- **Exactly once.** A run resolves the first time a terminal state is seen (on a
  stream or by ``GET``); later sightings are ignored.
- **Survives broken streams.** A closed stream, a transport error, a 429/5xx
  answer or ``idle_timeout`` without a byte reconnects with capped, jittered
  backoff and ``Last-Event-ID``. After ``confirm_after_failures`` failures in a
  row each waiting run is confirmed with ``GET /v1/task-runs/{id}``; after
  ``max_failures`` with no sign of life from the server, the batch's runs
  resolve with the last error instead of waiting forever.
- **Never silent.** A malformed event for a run triggers a ``GET`` instead of a
  hang; a stream endpoint that refuses the request (4xx) falls back to polling;
  401/403 resolve the runs with that error, and so does a ``GET`` answered with
  any client error but a rate limit (404, 421...); a deadline resolves the runs still
  waiting with :class:`~render_core.errors.TimeoutError`.
- **A mistyped id fails fast.** An event stream accepts any id and never speaks
  of one that does not exist, so an id not known to exist is confirmed with one
  ``GET`` ``confirm_delay`` after its stream opens (``confirm_wait`` after it was
  added at the latest); ids added together are spread over ``confirm_spread``.
  A 404 resolves the run with :class:`~render_core.errors.NotFoundError` within
  about a second. Ids in ``known_runs`` (the runs the client started itself, and
  those confirmed before) cost no such request.
- **A safety net.** A run with no news for ``check_interval`` seconds is checked
  once with ``GET`` (the interval doubles up to ``max_check_interval``), in case a
  server never delivers an event it should have.
- **Quiet when done.** Once no run is waiting, it asks for nothing but closing.

Which failure leads to what (reconnect, poll instead, or end the wait with the
error) is not decided here: it is looked up in the event-stream and confirmation
columns of the retry table, :data:`render_core.backoff.EVENT_STREAM` and
:data:`render_core.backoff.CONFIRMATION_GET`.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from urllib.parse import quote

import attrs

from render_core import api, models
from render_core.backoff import (
    CONFIRMATION_GET,
    EVENT_STREAM,
    Backoff,
    Next,
    Outcome,
    RandomSource,
    classify,
)
from render_core.config import ClientConfig
from render_core.errors import (
    NetworkError,
    ProtocolError,
    RateLimitError,
    RenderError,
    ServerError,
    TaskRunError,
    TimeoutError,
    UnexpectedResponseError,
)
from render_core.http import Request, Response
from render_core.sse import ServerSentEvent, SSEDecoder

__all__ = [
    "CloseStream",
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_IDLE_TIMEOUT",
    "DEFAULT_MAX_URL_LENGTH",
    "Fetch",
    "KnownRuns",
    "OpenStream",
    "RunResult",
    "RunWaiter",
    "WAIT_OPERATION",
    "task_run_error",
    "wait_timed_out",
]

# One connection per 100 runs: the URL stays near 3.7 KB, well under the 8 KB
# request-line limit common to proxies and servers.
DEFAULT_BATCH_SIZE = 100
DEFAULT_MAX_URL_LENGTH = 4096
# Longer than the 25 s ": ping" keep-alive of Render's servers, so a
# healthy idle stream is never mistaken for a dead one.
DEFAULT_IDLE_TIMEOUT = 60.0
DEFAULT_RECONNECT_BACKOFF = Backoff(base=0.25, factor=2.0, cap=10.0, max_attempts=1_000_000)
# Two failures in a row suggest the stream may not deliver; confirm by GET then.
DEFAULT_CONFIRM_AFTER_FAILURES = 2
# About a minute of total outage (0.25 + 0.5 + ... capped at 10 s) before giving up.
DEFAULT_MAX_FAILURES = 10
# The safety-net check: rare, so a thousand waiting runs cost a few GETs a second at most.
DEFAULT_CHECK_INTERVAL = 30.0
DEFAULT_MAX_CHECK_INTERVAL = 300.0
# Polling cadence when the event stream is refused outright.
DEFAULT_POLL_BACKOFF = Backoff(base=0.5, factor=1.5, cap=5.0, max_attempts=1_000_000)
# Coalesce ids added within this window into one re-subscription.
DEFAULT_REGROUP_DELAY = 0.02
# Confirming an id not known to exist: long enough after the stream opens for its
# replay of finished runs to arrive first (a finished run then costs no GET), short
# enough that a mistyped id fails in about a second.
DEFAULT_CONFIRM_DELAY = 0.25
# ...at the latest this long after the id was added, should its stream be slow to open.
DEFAULT_CONFIRM_WAIT = 1.0
# Ids added together are confirmed over this span, not in one burst.
DEFAULT_CONFIRM_SPREAD = 1.0
# Ids remembered as existing; about 100 bytes each, so 10 MB at most.
DEFAULT_KNOWN_RUNS = 100_000


class KnownRuns:
    """Run ids known to exist: started by this client or confirmed by the server.

    Bounded: past ``capacity`` the oldest are forgotten (waiting for one of those
    again costs one confirming ``GET``, nothing else).
    """

    def __init__(self, run_ids: Iterable[str] = (), *, capacity: int = DEFAULT_KNOWN_RUNS) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        self._capacity = capacity
        self._ids: dict[str, None] = {}
        for run_id in run_ids:
            self.add(run_id)

    def add(self, run_id: str) -> None:
        self._ids.pop(run_id, None)
        self._ids[run_id] = None
        if len(self._ids) > self._capacity:
            del self._ids[next(iter(self._ids))]

    def __contains__(self, run_id: object) -> bool:
        return run_id in self._ids

    def __len__(self) -> int:
        return len(self._ids)


@attrs.frozen
class OpenStream:
    """Open an event stream: send ``request`` and report on ``stream_id``."""

    stream_id: int
    request: Request


@attrs.frozen
class CloseStream:
    """Stop reading ``stream_id`` and release its connection (no-op if already gone)."""

    stream_id: int


@attrs.frozen
class Fetch:
    """``GET`` one run: answer with ``fetch_response`` or ``fetch_failed``."""

    run_id: str
    request: Request


Action = OpenStream | CloseStream | Fetch

WAIT_OPERATION = "wait for task runs"


def wait_timed_out(run_ids: Sequence[str], timeout: float | None) -> TimeoutError:
    """The error of a wait whose deadline passed with ``run_ids`` still running.

    Both client faces raise exactly this, whichever colour drove the wait: it names
    the runs (the first five) and the ``timeout`` that was given, when one was.
    """
    shown = ", ".join(run_ids[:5]) + (" ..." if len(run_ids) > 5 else "")
    when = "at the deadline" if timeout is None else f"after {timeout:g} s"
    return TimeoutError(
        f"{len(run_ids)} task run(s) still not finished {when}: {shown}",
        operation=WAIT_OPERATION,
    )


def task_run_error(details: models.TaskRunDetails) -> TaskRunError | None:
    """The :class:`TaskRunError` for a run that ended without success, else None."""
    if details.status.is_success:
        return None
    if details.status is models.TaskRunStatus.CANCELED:
        message = details.error or f"task run {details.id} was canceled"
    else:
        message = details.error or f"task run {details.id} ended with status {details.status}"
    return TaskRunError(message, details=details)


@attrs.frozen
class RunResult:
    """How one awaited run ended: its final details, or the error that ended the wait."""

    run_id: str
    details: models.TaskRunDetails | None = None
    error: RenderError | None = None

    def unwrap(self) -> models.TaskRunDetails:
        """The details of a successful run; raises :class:`TaskRunError` or the wait's error."""
        if self.error is not None:
            raise self.error
        assert self.details is not None
        failure = task_run_error(self.details)
        if failure is not None:
            raise failure
        return self.details


class _State(enum.Enum):
    NEW = "new"  # waiting to be opened
    CONNECTING = "connecting"  # OpenStream issued, no status yet
    OPEN = "open"  # 200 received, reading events
    BACKOFF = "backoff"  # broken, waiting to reconnect
    POLLING = "polling"  # the server refused the stream; runs are polled with GET


@attrs.define
class _Batch:
    ids: set[str]
    url_length: int
    state: _State = _State.NEW
    stream_id: int | None = None
    decoder: SSEDecoder | None = None
    comments_seen: int = 0
    last_event_id: str = ""
    resume: bool = False  # send Last-Event-ID on the next connection
    failures: int = 0
    reopen_at: float = 0.0
    last_activity: float = 0.0
    regroup_at: float | None = None


@attrs.define
class _Run:
    batch: _Batch
    deadline: float | None
    timeout: float | None  # the seconds the caller gave, for the error at the deadline
    next_check_at: float
    check_interval: float
    polls: int = 0
    confirmed: bool = True  # known to exist (else confirmed by GET soon)
    confirm_offset: float = 0.0  # its share of the confirmation spread


class RunWaiter:
    """Waits for task runs to reach a terminal state over shared event streams.

    See the module docstring for the protocol. All methods are cheap and never
    raise for late or duplicate reports (a stream the waiter already closed may
    still deliver buffered bytes; they are ignored).
    """

    def __init__(
        self,
        config: ClientConfig,
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        max_url_length: int = DEFAULT_MAX_URL_LENGTH,
        idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
        reconnect: Backoff = DEFAULT_RECONNECT_BACKOFF,
        confirm_after_failures: int = DEFAULT_CONFIRM_AFTER_FAILURES,
        max_failures: int = DEFAULT_MAX_FAILURES,
        check_interval: float = DEFAULT_CHECK_INTERVAL,
        max_check_interval: float = DEFAULT_MAX_CHECK_INTERVAL,
        poll_backoff: Backoff = DEFAULT_POLL_BACKOFF,
        regroup_delay: float = DEFAULT_REGROUP_DELAY,
        deadline: float | None = None,
        rng: RandomSource | None = None,
        known_runs: KnownRuns | None = None,
        confirm_delay: float = DEFAULT_CONFIRM_DELAY,
        confirm_wait: float = DEFAULT_CONFIRM_WAIT,
        confirm_spread: float = DEFAULT_CONFIRM_SPREAD,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        if idle_timeout <= 0:
            raise ValueError(f"idle_timeout must be positive, got {idle_timeout}")
        if max_failures < 1:
            raise ValueError(f"max_failures must be at least 1, got {max_failures}")
        self._config = config
        self._batch_size = batch_size
        self._max_url_length = max_url_length
        self._idle_timeout = idle_timeout
        self._reconnect = reconnect
        self._confirm_after = confirm_after_failures
        self._max_failures = max_failures
        self._check_interval = check_interval
        self._max_check_interval = max_check_interval
        self._poll_backoff = poll_backoff
        self._regroup_delay = regroup_delay
        self._deadline = deadline
        self._rng = rng
        self._known = known_runs if known_runs is not None else KnownRuns()
        self._confirm_delay = confirm_delay
        self._confirm_wait = confirm_wait
        self._confirm_spread = confirm_spread
        self._base_url_length = len(config.api_url + "/task-runs/events?")
        self._runs: dict[str, _Run] = {}
        self._batches: list[_Batch] = []
        self._by_stream: dict[int, _Batch] = {}
        self._to_close: list[int] = []
        self._in_flight: set[str] = set()
        self._results: list[RunResult] = []
        self._next_stream_id = 0
        self.streams_opened = 0
        """How many connections this waiter has asked for (for tests and benchmarks)."""

    # -- queries ---------------------------------------------------------------

    @property
    def done(self) -> bool:
        """No run is waiting and no close is outstanding."""
        return not self._runs and not self._to_close

    def can_block_on_stream(self) -> bool:
        """Whether a driver may block on the next bytes of the one open stream.

        True when every run waited for is known to exist and has no deadline, no
        run is being polled, and one stream serves them all: then nothing must
        happen at a set time but the rare safety-net check (and the idle timer,
        which a stream's own read timeout stands in for), and that check can wait
        for the next bytes or keep-alive comment. A sync driver then reads that
        stream in its own thread instead of handing every chunk over from another.
        """
        if self._deadline is not None or len(self._batches) != 1:
            return False
        if self._batches[0].regroup_at is not None:
            return False
        return all(
            run.deadline is None and run.confirmed and not run.polls for run in self._runs.values()
        )

    def next_deadline(self) -> float | None:
        """The earliest ``now`` at which :meth:`poll` has work; None if only events can help."""
        times: list[float] = []
        if self._to_close:
            return float("-inf")
        if self._deadline is not None and self._runs:
            times.append(self._deadline)
        for batch in self._batches:
            if batch.state is _State.NEW:
                return float("-inf")
            if batch.state is _State.BACKOFF:
                times.append(batch.reopen_at)
            elif batch.state in (_State.CONNECTING, _State.OPEN):
                times.append(batch.last_activity + self._idle_timeout)
            if batch.regroup_at is not None:
                times.append(batch.regroup_at)
        for run_id, run in self._runs.items():
            if run.deadline is not None:
                times.append(run.deadline)
            if run_id not in self._in_flight:
                times.append(run.next_check_at)
        return min(times) if times else None

    @property
    def has_results(self) -> bool:
        """Some runs resolved and :meth:`take_results` has not collected them yet."""
        return bool(self._results)

    def take_results(self) -> list[RunResult]:
        """Runs resolved since the last call, in the order they resolved."""
        results, self._results = self._results, []
        return results

    # -- inputs from the caller -------------------------------------------------

    def add(
        self,
        run_ids: Iterable[str],
        now: float,
        *,
        deadline: float | None = None,
        timeout: float | None = None,
    ) -> None:
        """Start waiting for ``run_ids`` (ids already waited for are left as they are).

        ``deadline`` (same clock as ``now``), or ``timeout`` seconds from ``now``,
        bounds the wait for these runs only; at that moment each still waiting
        resolves with :func:`wait_timed_out`.
        """
        if timeout is not None:
            end = now + timeout
            if deadline is not None and deadline < end:
                timeout = None  # the earlier deadline binds: no number of seconds to name
            else:
                deadline = end
        if isinstance(run_ids, str):
            raise TypeError("run_ids must be an iterable of run ids, not a single string")
        new: list[str] = []
        for run_id in run_ids:
            if not isinstance(run_id, str) or not run_id:
                raise TypeError(f"a task run id must be a non-empty str, got {run_id!r}")
            if run_id not in self._runs and run_id not in new:
                new.append(run_id)
        unconfirmed = [run_id for run_id in new if run_id not in self._known]
        offsets = {
            run_id: self._confirm_spread * index / len(unconfirmed)
            for index, run_id in enumerate(unconfirmed)
        }
        for run_id in new:
            batch = self._batch_for(run_id, now)
            offset = offsets.get(run_id)
            if offset is None:
                # Spread the first checks of many runs added at once over half an
                # interval, so a thousand waits never fire a thousand GETs together.
                spread = 1.0 + 0.5 * self._rng.random() if self._rng is not None else 1.0
                first_check = now + self._check_interval * spread
            else:
                first_check = now + self._confirm_wait + offset
            self._runs[run_id] = _Run(
                batch=batch,
                deadline=deadline,
                timeout=timeout,
                next_check_at=first_check,
                check_interval=self._check_interval,
                confirmed=offset is None,
                confirm_offset=offset or 0.0,
            )

    def discard(self, run_ids: Iterable[str]) -> None:
        """Stop waiting for ``run_ids`` without a result (the caller gave up)."""
        for run_id in run_ids:
            run = self._runs.pop(run_id, None)
            if run is not None:
                self._detach(run_id, run.batch)

    # -- what to do now -----------------------------------------------------------

    def poll(self, now: float) -> list[Action]:
        """The actions due at ``now``: opens, closes and fetches, in that order of need."""
        self._expire(now)
        actions: list[Action] = [CloseStream(stream_id) for stream_id in self._to_close]
        self._to_close.clear()
        for batch in list(self._batches):
            if batch.regroup_at is not None and batch.regroup_at <= now:
                batch.regroup_at = None
                if batch.stream_id is not None:
                    actions.append(CloseStream(self._forget_stream(batch)))
                batch.state = _State.NEW
                batch.resume = False  # new ids need the full replay
            if batch.state in (_State.CONNECTING, _State.OPEN) and (
                now >= batch.last_activity + self._idle_timeout
            ):
                actions.append(CloseStream(self._forget_stream(batch)))
                idle = TimeoutError(
                    f"no data on the event stream for {self._idle_timeout:g} s",
                    operation=api.TASK_RUN_EVENTS.name,
                )
                self._stream_ended(batch, now, idle)
            if batch.state is _State.BACKOFF and batch.reopen_at <= now:
                batch.state = _State.NEW
            if batch.state is _State.NEW and batch.ids:
                actions.append(self._open(batch, now))
        for run_id, run in self._runs.items():
            if run_id not in self._in_flight and run.next_check_at <= now:
                self._in_flight.add(run_id)
                actions.append(Fetch(run_id, api.build_get_task_run(self._config, run_id)))
        return actions

    # -- reports from the transport -------------------------------------------------

    def stream_opened(self, stream_id: int, response: Response, now: float) -> None:
        """The stream's status line arrived (``response.body`` may hold an error body)."""
        batch = self._by_stream.get(stream_id)
        if batch is None or batch.state is not _State.CONNECTING:
            return
        batch.last_activity = now
        if response.status == api.TASK_RUN_EVENTS.success:
            batch.state = _State.OPEN
            batch.decoder = SSEDecoder(last_event_id=batch.last_event_id)
            batch.comments_seen = 0
            for run_id in batch.ids:
                run = self._runs[run_id]
                if not run.confirmed:
                    soon = now + self._confirm_delay + run.confirm_offset
                    run.next_check_at = min(run.next_check_at, soon)
            return
        error = api.error_for_response(api.TASK_RUN_EVENTS, response)
        self._to_close.append(self._forget_stream(batch))
        self._stream_ended(batch, now, error, classify(response.status))

    def stream_data(self, stream_id: int, data: bytes, now: float) -> None:
        """Bytes arrived on a stream."""
        batch = self._by_stream.get(stream_id)
        if batch is None or batch.decoder is None or batch.state is not _State.OPEN:
            return
        batch.last_activity = now
        try:
            events = batch.decoder.feed(data)
        except ProtocolError as exc:
            self._to_close.append(self._forget_stream(batch))
            self._stream_ended(batch, now, exc)
            return
        self._handle_events(batch, events, now)

    def stream_closed(self, stream_id: int, now: float, error: RenderError | None = None) -> None:
        """A stream ended: cleanly (``error`` None) or with a transport error."""
        batch = self._by_stream.get(stream_id)
        if batch is None:
            return
        # No decoder.close(): an event not ended by a blank line is discarded
        # (WHATWG), so the end of a stream can never complete one.
        self._forget_stream(batch)
        reason = error or NetworkError(
            "the server closed the event stream", operation=api.TASK_RUN_EVENTS.name
        )
        self._stream_ended(batch, now, reason)

    def fetch_response(self, run_id: str, response: Response, now: float) -> None:
        """The answer to a :class:`Fetch` (any status)."""
        self._in_flight.discard(run_id)
        run = self._runs.get(run_id)
        if run is None:
            return
        try:
            details = api.parse_get_task_run(response)
        except RenderError as exc:
            self._fetch_ended(run_id, run, now, exc, classify(response.status))
            return
        self._alive(run.batch)
        self._confirm(run_id, run, now)
        if details.status.is_terminal:
            self._resolve(run_id, details=details)
        else:
            self._reschedule(run_id, run, now)

    def fetch_failed(self, run_id: str, error: RenderError, now: float) -> None:
        """A :class:`Fetch` failed in the transport (connection refused, timeout...)."""
        self._in_flight.discard(run_id)
        run = self._runs.get(run_id)
        if run is not None:
            self._fetch_ended(run_id, run, now, error, classify(error=error))

    # -- internals ------------------------------------------------------------

    def _url_cost(self, run_id: str) -> int:
        return len("taskRunIds=") + len(quote(run_id, safe="")) + 1

    def _batch_for(self, run_id: str, now: float) -> _Batch:
        cost = self._url_cost(run_id)
        candidates = sorted(
            (b for b in self._batches if b.state is not _State.POLLING),
            key=lambda b: b.state not in (_State.NEW, _State.BACKOFF),
        )
        for batch in candidates:
            if len(batch.ids) < self._batch_size and (
                batch.url_length + cost <= self._max_url_length
            ):
                batch.ids.add(run_id)
                batch.url_length += cost
                if batch.state in (_State.CONNECTING, _State.OPEN) and batch.regroup_at is None:
                    batch.regroup_at = now + self._regroup_delay
                return batch
        batch = _Batch(ids={run_id}, url_length=self._base_url_length + cost)
        self._batches.append(batch)
        return batch

    def _open(self, batch: _Batch, now: float) -> OpenStream:
        self._next_stream_id += 1
        stream_id = self._next_stream_id
        batch.stream_id = stream_id
        batch.state = _State.CONNECTING
        batch.decoder = None
        batch.last_activity = now
        self._by_stream[stream_id] = batch
        self.streams_opened += 1
        request = api.build_task_run_events(
            self._config,
            sorted(batch.ids),
            last_event_id=batch.last_event_id if batch.resume else None,
        )
        return OpenStream(stream_id, request)

    def _forget_stream(self, batch: _Batch) -> int:
        stream_id = batch.stream_id
        assert stream_id is not None
        self._by_stream.pop(stream_id, None)
        if batch.decoder is not None:
            batch.last_event_id = batch.decoder.last_event_id
        batch.stream_id = None
        batch.decoder = None
        return stream_id

    def _handle_events(self, batch: _Batch, events: list[ServerSentEvent], now: float) -> None:
        decoder = batch.decoder
        if decoder is not None:
            if decoder.comments != batch.comments_seen or events:
                batch.comments_seen = decoder.comments
                self._alive(batch)
            batch.last_event_id = decoder.last_event_id
        for event in events:
            try:
                details = api.parse_task_run_event(event)
            except UnexpectedResponseError:
                # A broken event may have been about one of ours: ask the server.
                for run_id in batch.ids:
                    self._runs[run_id].next_check_at = now
                continue
            if details is None or details.id not in batch.ids:
                continue
            self._confirm(details.id, self._runs[details.id], now)
            if details.status.is_terminal:
                self._resolve(details.id, details=details)
        batch.resume = True

    def _stream_ended(
        self, batch: _Batch, now: float, error: RenderError, outcome: Outcome | None = None
    ) -> None:
        """A stream was refused with ``error`` or ended by it: the stream table says what next.

        ``outcome`` is the refusing status's; without one, ``error``'s own.
        """
        if outcome is None:
            outcome = classify(error=error)
        then = EVENT_STREAM[outcome]
        if then is Next.RETRY:
            # A 429 says how long to stay away; nothing else is taken as a wait.
            retry_after = None
            if outcome is Outcome.RATE_LIMITED and isinstance(error, RateLimitError):
                retry_after = error.retry_after
            self._failure(batch, now, error, retry_after=retry_after)
        elif then is Next.RESOLVE:
            for run_id in list(batch.ids):
                self._resolve(run_id, error=error)
        else:
            batch.state = _State.POLLING
            for run_id in batch.ids:
                self._schedule_poll(run_id, now)

    def _fetch_ended(
        self, run_id: str, run: _Run, now: float, error: RenderError, outcome: Outcome
    ) -> None:
        """A run's ``GET`` gave no details: end its wait with ``error``, or ask again."""
        if CONFIRMATION_GET[outcome] is Next.RESOLVE:
            self._resolve(run_id, error=error)
        else:
            self._reschedule(run_id, run, now)

    def _alive(self, batch: _Batch) -> None:
        batch.failures = 0

    def _failure(
        self,
        batch: _Batch,
        now: float,
        error: RenderError,
        *,
        retry_after: float | None = None,
    ) -> None:
        batch.failures += 1
        batch.state = _State.BACKOFF
        if batch.failures >= self._max_failures:
            for run_id in list(batch.ids):
                self._resolve(run_id, error=_final_error(error, batch.failures))
            return
        if retry_after is not None:
            delay = retry_after
        else:
            delay = self._reconnect.delay(batch.failures - 1, self._rng)
        batch.reopen_at = now + max(0.0, delay)
        batch.resume = True
        if batch.failures >= self._confirm_after:
            for run_id in batch.ids:
                self._runs[run_id].next_check_at = now

    def _schedule_poll(self, run_id: str, now: float) -> None:
        run = self._runs[run_id]
        run.next_check_at = now + self._poll_backoff.delay(run.polls, self._rng)
        run.polls += 1

    def _confirm(self, run_id: str, run: _Run, now: float) -> None:
        """The server has spoken of ``run_id``: it exists; no early check is needed."""
        self._known.add(run_id)
        if not run.confirmed:
            run.confirmed = True
            run.next_check_at = now + run.check_interval

    def _reschedule(self, run_id: str, run: _Run, now: float) -> None:
        if run.batch.state is _State.POLLING or not run.confirmed:
            # Polling, or still to be confirmed (the GET failed): ask again soon.
            self._schedule_poll(run_id, now)
            return
        run.next_check_at = now + run.check_interval
        run.check_interval = min(run.check_interval * 2, self._max_check_interval)

    def _expire(self, now: float) -> None:
        for run_id, run in list(self._runs.items()):
            limit = run.deadline
            if self._deadline is not None:
                limit = self._deadline if limit is None else min(limit, self._deadline)
            if limit is not None and now >= limit:
                timeout = run.timeout if limit == run.deadline else None
                self._resolve(run_id, error=wait_timed_out([run_id], timeout))

    def _resolve(
        self,
        run_id: str,
        *,
        details: models.TaskRunDetails | None = None,
        error: RenderError | None = None,
    ) -> None:
        run = self._runs.pop(run_id)  # callers only resolve runs that are waiting
        self._in_flight.discard(run_id)
        self._detach(run_id, run.batch)
        self._results.append(RunResult(run_id, details=details, error=error))

    def _detach(self, run_id: str, batch: _Batch) -> None:
        batch.ids.discard(run_id)
        batch.url_length -= self._url_cost(run_id)
        if batch.ids:
            return
        if batch.stream_id is not None:
            self._to_close.append(self._forget_stream(batch))
        self._batches.remove(batch)


def _final_error(error: RenderError, failures: int) -> RenderError:
    if isinstance(error, TimeoutError | ServerError | NetworkError):
        return error
    return ServerError(
        f"the event stream failed {failures} times in a row: {error}",
        operation=api.TASK_RUN_EVENTS.name,
    )
