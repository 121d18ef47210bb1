"""The sans-I/O SMTP core: commands, replies, capabilities, addresses and data framing.

Nothing in this package touches a socket, TLS or an event loop.
"""
