"""Messages: what the caller gives, checked and turned into an envelope and chunks to send.

    sources          raw inputs (bytes, paths, files, iterables) as chunk streams; str refused
    email_objects    message objects written out; the fields they lack added to a copy
    header_checks    no header value of a message object may become more than one line
    header_section   the header section cut off and read with the framer's line breaks; Bcc
    address_list     the strict, linear-time reader of address-list fields
    envelope         the envelope as given, else from the header fields
    dkim_body        the DKIM body hash, computed as the body streams past
    dkim_key         a DKIM private key read and checked (cryptography), ready for dkimpy
    dkim_signer      ``DkimSigner``: its settings checked, the DKIM-Signature field (dkimpy)
    signing          signing in two passes over the body (read again, or kept) as it is sent
    prepare          all of it together: ``prepare`` -> ``PreparedMessage``
    simple           ``simple_message``, what ``send_mail`` sends
"""

from mailwire.message.header_section import MAX_HEADER_SECTION
from mailwire.message.prepare import PreparedMessage, prepare
from mailwire.message.simple import simple_message
from mailwire.message.sources import CHUNK_SIZE, MessageInput

__all__ = ["CHUNK_SIZE", "MAX_HEADER_SECTION", "MessageInput", "PreparedMessage", "prepare",
           "simple_message"]
