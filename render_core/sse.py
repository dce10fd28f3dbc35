"""An incremental Server-Sent-Events decoder: bytes in, complete events out.

Follows the WHATWG HTML "event stream interpretation" algorithm:
https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation

Theory of operation
-------------------
A transport reads the body of a ``text/event-stream`` response in chunks of any
size, split at any byte, and hands each chunk to :meth:`SSEDecoder.feed`. The
decoder returns the events the chunk completed (often none) as frozen
:class:`ServerSentEvent` values. When the body ends, the transport calls
:meth:`SSEDecoder.close`; an event that was not terminated by a blank line is then
discarded, as the spec requires. Between events the decoder exposes the state a
reconnecting client needs: :attr:`~SSEDecoder.last_event_id` (send it as
``Last-Event-ID``), :attr:`~SSEDecoder.retry` (the server's reconnection time in
milliseconds) and :attr:`~SSEDecoder.comments` (keep-alive comments such as
``: ping`` seen so far, a liveness signal).

Decoding is chunk-boundary-proof: bytes go through one incremental UTF-8 decoder
(a character split across chunks survives; an invalid byte becomes U+FFFD, never an
exception), lines end only at CRLF, LF or CR (a CR ending one chunk and an LF
starting the next are one line end), and one leading byte-order mark is dropped.
U+2028, U+2029 and U+0085, which JSON strings may carry, never end a line. Work and
memory are linear in the input: each chunk is normalised and split once, and an
unfinished line is kept as a list of pieces that are joined only when the line ends.

Bounded memory: a line longer than ``max_line_length`` *characters* (decoded text,
terminator excluded) raises :class:`~render_core.errors.ProtocolError`, so a
misbehaving server cannot make the decoder buffer without limit. The decoder is
then unusable: every later :meth:`~SSEDecoder.feed` raises ``ProtocolError`` too.

What it never does: I/O, blocking, reading the clock, parsing JSON or deciding
what an event means. It does not reconnect either; it only keeps what the caller
needs to do so.
"""

from __future__ import annotations

import codecs

import attrs

from render_core.errors import ProtocolError, ValidationError

__all__ = ["DEFAULT_MAX_LINE_LENGTH", "SSEDecoder", "ServerSentEvent"]

# 1 MiB of decoded text per line. The API puts a whole TaskRunDetails (inputs and
# results included) on one ``data:`` line, so the limit must be generous; it still
# bounds what one connection can make us buffer. Counted in characters, which is
# never more than the bytes they came from.
DEFAULT_MAX_LINE_LENGTH: int = 1 << 20

# CPython refuses to convert a decimal string of more digits than
# sys.get_int_max_str_digits() (640 at the lowest setting) and older versions take
# quadratic time on long ones. A reconnection time of 10**640 ms is meaningless, so
# a longer ``retry:`` value is ignored like any other invalid one.
_MAX_RETRY_DIGITS = 640

_BOM = "\ufeff"

_OPEN = "open"
_CLOSED = "closed"
_ERROR = "error"


@attrs.frozen(kw_only=True)
class ServerSentEvent:
    """One dispatched event.

    ``event`` is the event type (``"message"`` when the stream gave none), ``data``
    the ``data:`` lines joined with ``"\\n"``, ``id`` the decoder's last event ID
    string when the event was dispatched (it persists across events until a new
    ``id:`` field changes it). ``retry`` is always None here: the decoder tracks the
    reconnection time itself (:attr:`SSEDecoder.retry`); the field exists so the
    same value type can describe an event to *send*.
    """

    event: str = "message"
    data: str = ""
    id: str = ""
    retry: int | None = None


class SSEDecoder:
    """Turns the bytes of one event stream into :class:`ServerSentEvent` values.

    ``max_line_length`` bounds one line, in decoded characters. ``last_event_id``
    seeds both the last event ID string and the last event ID buffer: when resuming
    a stream with ``Last-Event-ID``, events that carry no ``id:`` field keep that id
    (as browsers do) instead of resetting it to ``""``.

    One decoder per HTTP response; a new connection needs a new decoder (carry
    ``last_event_id`` over by hand).
    """

    def __init__(
        self,
        *,
        max_line_length: int = DEFAULT_MAX_LINE_LENGTH,
        last_event_id: str = "",
    ) -> None:
        if max_line_length < 1:
            raise ValidationError(f"max_line_length must be positive, got {max_line_length}")
        if "\0" in last_event_id:
            raise ValidationError("last_event_id must not contain U+0000")
        self._max_line_length = max_line_length
        self._utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._state = _OPEN
        self._error = ""
        # The stream's first character has not been decoded yet (BOM check pending).
        self._at_start = True
        # The last text seen ended with CR: an LF starting the next text belongs to it.
        self._after_cr = False
        # The unfinished line, as pieces; joined once, when the line ends.
        self._partial: list[str] = []
        self._partial_length = 0
        # The spec's per-event buffers. Data lines are kept as a list and joined at
        # dispatch, which equals appending value + "\n" and dropping the last "\n".
        self._event_type = ""
        self._data: list[str] = []
        self._id_buffer = last_event_id
        self._last_event_id = last_event_id
        self._retry: int | None = None
        self._comments = 0

    @property
    def last_event_id(self) -> str:
        """The last event ID string: the id of the last dispatched event, or the seed.

        Updated only when an event is dispatched (a blank line), so an event that
        was cut off never moves it: resuming from it replays that event.
        """
        return self._last_event_id

    @property
    def retry(self) -> int | None:
        """The last valid ``retry:`` value in milliseconds, or None if none came."""
        return self._retry

    @property
    def comments(self) -> int:
        """How many comment lines (``: ping`` keep-alives and the like) were read."""
        return self._comments

    @property
    def max_line_length(self) -> int:
        """The longest line accepted, in decoded characters."""
        return self._max_line_length

    def feed(self, data: bytes) -> list[ServerSentEvent]:
        """Decode the next chunk of the stream; return the events it completed.

        Raises :class:`~render_core.errors.ProtocolError` if the decoder was closed,
        if a line exceeds ``max_line_length`` (nothing of that chunk is applied and
        the decoder stays unusable), or if an earlier call raised.
        """
        if self._state != _OPEN:
            self._check_open()
        if self._utf8.buffer:
            text = self._utf8.decode(data)  # the end of a character cut by the last chunk
        else:
            try:
                # One C call for the usual chunk; a chunk that ends inside a character
                # or holds invalid bytes takes the incremental decoder (same result).
                text = data.decode("utf-8")
            except UnicodeDecodeError:
                text = self._utf8.decode(data)
        if self._partial and text and "\n" not in text and "\r" not in text:
            # The middle of a long line (small network reads): nothing to split.
            # A pending partial line means the stream has started and no CR is pending.
            length = self._partial_length + len(text)
            if length > self._max_line_length:
                raise self._fail(
                    f"event stream line longer than {self._max_line_length} characters"
                )
            self._partial.append(text)
            self._partial_length = length
            return []
        return self._receive(text)

    def close(self) -> list[ServerSentEvent]:
        """Signal the end of the stream; return the events it completed (none, per spec).

        Flushes the UTF-8 decoder (a truncated character becomes U+FFFD) and
        processes a final line that lacks its terminator, so a trailing ``retry:``
        or comment still counts; the event it belongs to was not ended by a blank
        line and is discarded, leaving :attr:`last_event_id` where it was.
        Afterwards :meth:`feed` raises ``ProtocolError``. Calling ``close`` again,
        or after an error, does nothing and returns ``[]``. May raise
        ``ProtocolError`` if the flushed text makes the last line too long.
        """
        if self._state != _OPEN:
            return []
        events = self._receive(self._utf8.decode(b"", final=True))
        self._state = _CLOSED
        if self._partial:
            line = "".join(self._partial)
            self._partial = []
            self._partial_length = 0
            # A non-empty line never dispatches, so nothing can be returned here.
            self._process_line(line)
        self._event_type = ""
        self._data = []
        return events

    def _check_open(self) -> None:
        if self._state == _CLOSED:
            raise ProtocolError("decoder is closed")
        if self._state == _ERROR:
            raise ProtocolError(f"decoder is unusable after an earlier error: {self._error}")

    def _fail(self, message: str) -> ProtocolError:
        self._state = _ERROR
        self._error = message
        return ProtocolError(message)

    def _receive(self, text: str) -> list[ServerSentEvent]:
        if not text:
            return []
        if self._at_start:
            # Only the stream's very first character may be a BOM; nothing precedes
            # it, so there is no pending CR to consider.
            self._at_start = False
            if text[0] == _BOM:
                text = text[1:]
        elif self._after_cr:
            self._after_cr = False
            if text[0] == "\n":
                text = text[1:]
        if not text:
            return []
        # A CR ending the text ends a line now; remember it to swallow a following LF.
        self._after_cr = text[-1] == "\r"
        if "\r" in text:  # rare in practice; skip two copies of a large text
            text = text.replace("\r\n", "\n").replace("\r", "\n")
        lines = text.split("\n")

        # Check every line before applying any, so a failing chunk changes nothing.
        limit = self._max_line_length
        first = self._partial_length + len(lines[0])
        if first > limit or (len(lines) > 1 and max(map(len, lines[1:])) > limit):
            raise self._fail(f"event stream line longer than {limit} characters")

        if len(lines) == 1:
            self._partial.append(lines[0])
            self._partial_length = first
            return []

        events: list[ServerSentEvent] = []
        if self._partial:
            self._partial.append(lines[0])
            lines[0] = "".join(self._partial)
        rest = lines.pop()
        self._partial = [rest] if rest else []
        self._partial_length = len(rest)
        for line in lines:
            event = self._process_line(line)
            if event is not None:
                events.append(event)
        return events

    def _process_line(self, line: str) -> ServerSentEvent | None:
        if not line:
            return self._dispatch()
        if line[0] == ":":
            self._comments += 1
            return None
        name, _, value = line.partition(":")
        if value[:1] == " ":
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event_type = value
        elif name == "id" and "\0" not in value:
            self._id_buffer = value
        elif name == "retry" and _is_retry_value(value):
            self._retry = int(value)
        # Any other field, an id containing U+0000 and a retry that is not all ASCII
        # digits are ignored, as the spec requires.
        return None

    def _dispatch(self) -> ServerSentEvent | None:
        self._last_event_id = self._id_buffer
        event_type = self._event_type or "message"
        data = self._data
        self._event_type = ""
        self._data = []
        if not data:
            return None
        return ServerSentEvent(event=event_type, data="\n".join(data), id=self._last_event_id)


def _is_retry_value(value: str) -> bool:
    # str.isdigit alone accepts non-ASCII digits (U+00B2, U+0661); the spec wants 0-9 only.
    return len(value) <= _MAX_RETRY_DIGITS and value.isascii() and value.isdigit()
