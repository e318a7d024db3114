"""Azure Storage for funclocal: shared clients over one transport, retries, request
counts, the lean queue and table requests of the durable hot path, and the managed
Azurite. Usable without the durable runtime (triggers, the CLI)."""
