"""The SMTP conversation, written once and driven by the sync and asyncio drivers."""
