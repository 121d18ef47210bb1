"""mailwire's benchmark suite: ``python -m benchmarks.run`` (see README.md in this folder).

Modules, one concern each:

run         the command: options, the order of the rows, starting and stopping the sinks
sinks       Postfix ``smtp-sink`` (with its message counter) and the TLS ``DevServer``s
corpus      the message bytes every client sends, and the large files on disk
worker      the client side of every row, in a subprocess of its own
clients     small-message send loops: mailwire, smtplib, aiosmtplib, ``smtp-source``
large       one large streamed message, its throughput and the client's peak memory
handshake   connection set-up time in each security mode
profiling   cProfile across threads, for ``--profile``
report      the table, the ratios, the targets and the JSON document
chart       the PNG chart (matplotlib, when importable)
"""
