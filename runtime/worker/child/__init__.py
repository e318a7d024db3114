"""What runs inside a worker process: importing the app (`loader`), turning invoke
messages into calls of user code (`invocation`), orchestrator episodes with replay
sessions and the SDK speed-ups (`orchestrations`, `sessions`, `sdk_speedups`), and the
process's main loop (`main`). Nothing here runs in the host process."""
