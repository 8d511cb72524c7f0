"""tickpipe's pure core: VTS/1 frames, exact books, sync state machine, backoff, watchdogs.

Nothing in this package does I/O, reads a clock or draws random numbers: clock readings and a
random source are passed in. ``tests/protocol/test_purity.py`` enforces it by reading imports.
"""
