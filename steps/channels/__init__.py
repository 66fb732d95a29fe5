"""Channels, the only mutable pointers: the pure rules that decide a move
(:mod:`.rules`), the audit records (:mod:`.audit`), and the registry I/O around them with
the concurrency protocol (:mod:`.move`)."""
