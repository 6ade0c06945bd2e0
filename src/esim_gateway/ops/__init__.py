"""Running the gateway: what every layer may use and that knows none of them.

    logging.py     structured JSON logs, credentials redacted
    metrics.py     Prometheus metrics; time a request waited on providers
    requests.py    request id, access line and request metrics around the ASGI app
    tracing.py     OpenTelemetry spans (optional)
    heap.py        the garbage collector's settings for a server process
    background.py  periodic background loops
    slices.py      CPU-bound work over long lists without holding the event loop
    ratelimit.py   token buckets per key, in memory or in Redis

Imports nothing of the gateway but `config` and `errors`, so any package may import it.
"""
