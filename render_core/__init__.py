"""render_core: the sans-IO protocol core of the Render Workflows SDK.

Pure data and state machines: request builders and response parsers for the REST
API, the Server-Sent-Events decoder, retry/backoff math, the run waiter, task
definitions and the task-socket protocol. Nothing here opens a socket, starts a
thread, sleeps, reads the clock or draws random numbers: time and randomness are
arguments, and I/O is the job of a transport (see ``render_transports``).
"""

__version__ = "0.1.0"
