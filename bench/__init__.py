"""Load benchmarks that print ratios: the hub against the same calls made directly and through a minimal
pass-through proxy, every server a real process on loopback. `python -m bench --help`."""
