"""The systems funclocal is compared with, each run as its own process by bench/durable.py:
`python -m bench.peers.NAME SPEC_JSON` prints its results as one JSON line on stdout."""
