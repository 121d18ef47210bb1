"""Connection pools: ``SmtpPool`` (threads) and ``AsyncSmtpPool`` (asyncio tasks).

A pool holds up to N connections to one server with one set of options and lends them out one
caller at a time; see ``sync_pool`` for the rules both follow, ``base`` for how both are made,
``ledger`` for the bookkeeping they share, ``spread`` for ``send_many`` over several connections
and ``forks`` for fork safety.
"""

from mailwire.pool.async_pool import AsyncSmtpPool
from mailwire.pool.sync_pool import SmtpPool

__all__ = ["AsyncSmtpPool", "SmtpPool"]
