"""I/O adapters that run the sans-IO core (``render_core``) over real connections.

Adapters hold no protocol logic: they send the core's requests, hand back
responses and stream bytes, and map their library's exceptions to the core's
transport errors.
"""
