"""Getting bytes to and from the server: TCP, TLS, and the translation of OS errors."""
