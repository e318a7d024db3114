"""funclocal: a local host for Azure Functions Python v2 apps with Durable Functions built in."""

__version__ = "0.1.0"
