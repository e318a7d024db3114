"""The one exception hierarchy of funclocal.

Every error the host raises on purpose derives from HostError and carries structured
attributes; its message is built in __init__ so that logs and HTTP bodies agree.
"""

from __future__ import annotations

import os


class HostError(Exception):
    """Base of every error funclocal raises deliberately."""


# --- configuration and indexing -------------------------------------------------------


class ConfigError(HostError):
    """A configuration file is malformed or holds a value of the wrong type."""

    def __init__(self, file: str, message: str, *, line: int | None = None,
                 key: str | None = None) -> None:
        self.file = file
        self.line = line
        self.key = key
        self.detail = message
        where = file if line is None else f"{file}, line {line}"
        if key:
            where += f", key '{key}'"
        super().__init__(f"{where}: {message}")


class IndexingError(HostError):
    """The app could not be indexed (import error, no app object, bad bindings...)."""

    def __init__(self, message: str, *, traceback_text: str | None = None,
                 missing_module: str | None = None) -> None:
        self.traceback_text = traceback_text
        self.missing_module = missing_module  # a ModuleNotFoundError's module name
        super().__init__(message)


class RouteError(IndexingError):
    """An HTTP route template is invalid or conflicts with another route."""


class BindingError(HostError):
    """An input binding of a function cannot be provided for an invocation."""


class PortTaken(HostError):
    """A port the host must listen on is in use (`what`: "HTTP", "debugger")."""

    def __init__(self, port: int, what: str, error: OSError, change: str) -> None:
        self.port = port
        reason = os.strerror(error.errno) if error.errno else str(error)
        super().__init__(f"Port {port} ({what}) is unavailable: {reason}. "
                         f"Stop what uses it, or choose another port with {change}.")


# --- workers ------------------------------------------------------------------------


class WorkerError(HostError):
    """A worker process failed to start, died, or broke the channel protocol."""


class WorkerDied(WorkerError):
    """The worker holding an invocation exited before answering. `others` is how many
    other invocations it was running then (so this one may not be what killed it);
    `recycled` says the host stopped it (after another invocation's timeout)."""

    def __init__(self, pid: int | None, exit_code: int | None, *, others: int = 0,
                 recycled: bool = False) -> None:
        self.pid = pid
        self.exit_code = exit_code
        self.others = others
        self.recycled = recycled
        super().__init__(
            f"The worker process (pid {pid}) exited with code {exit_code} "
            "while running this invocation.")

    @property
    def alone(self) -> bool:
        """Whether the invocation was the only one in that worker, which the host did
        not stop: then it is what made the worker exit."""
        return self.others == 0 and not self.recycled


class InvocationTimeout(WorkerError):
    """An invocation ran longer than functionTimeout."""

    def __init__(self, function_name: str, seconds: float) -> None:
        self.function_name = function_name
        self.seconds = seconds
        super().__init__(
            f"Timeout value of {_format_timespan(seconds)} was exceeded by function: "
            f"Functions.{function_name}")


class FunctionInvocationError(WorkerError):
    """User code raised; carries the exception type, message and traceback text."""

    def __init__(self, function_name: str, exc_type: str, message: str,
                 traceback_text: str) -> None:
        self.function_name = function_name
        self.exc_type = exc_type
        self.exc_message = message
        self.traceback_text = traceback_text
        super().__init__(f"{exc_type}: {message}")


# --- storage and durable ------------------------------------------------------------


class StorageError(HostError):
    """Azure Storage could not be reached or answered with an unexpected error."""


class StorageUnavailable(StorageError):
    """A management operation could not finish within its bound because Azure Storage
    does not answer (an outage); the host answers 503 and keeps serving."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        super().__init__(
            f"Azure Storage did not answer within {seconds:.0f} seconds; is it (Azurite) "
            "running and reachable? Work resumes by itself once it is back.")


class AzuriteError(HostError):
    """The managed Azurite could not be started."""


class DurableError(HostError):
    """Base of Durable Functions errors surfaced to clients."""


class InvalidArgument(DurableError):
    """Maps to the extension's ArgumentException: a 400 with ExceptionMessage."""


class InvalidInstanceId(InvalidArgument):
    pass


class UnknownFunction(InvalidArgument):
    pass


class InstanceNotFound(DurableError):
    def __init__(self, instance_id: str) -> None:
        self.instance_id = instance_id
        super().__init__(f"No instance with ID '{instance_id}' was found.")


class InstanceExists(DurableError):
    def __init__(self, instance_id: str, status: str) -> None:
        self.instance_id = instance_id
        self.status = status
        super().__init__(
            f"An Orchestration instance with the status {status} already exists.")


class InstanceNotRunning(DurableError):
    """The instance is in a terminal state, so the operation is gone (410)."""

    def __init__(self, instance_id: str, status: str) -> None:
        self.instance_id = instance_id
        self.status = status
        super().__init__(f"The instance '{instance_id}' is in the {status} state.")


class InvalidOperation(DurableError):
    """The extension's InvalidOperationException: the operation does not apply to the
    instance in its present state (a 500 with the message, as HttpApiHandler answers)."""


class RestartUnknown(InvalidArgument):
    """A restart of an instance id that does not exist (HttpApiHandler's 400)."""

    def __init__(self, instance_id: str) -> None:
        self.instance_id = instance_id
        # "orchestrastion" is the extension's own spelling.
        super().__init__(f"An orchestrastion with the instanceId {instance_id} was not found.")


class VersionRejected(DurableError):
    """Worker versioning refused to run an instance here (versionFailureStrategy Reject):
    its messages wait for a host whose defaultVersion accepts it."""

    def __init__(self, instance_id: str, version: str | None, worker: str | None) -> None:
        self.instance_id = instance_id
        super().__init__(
            f"Orchestration '{instance_id}' has version '{version or ''}', which this host "
            f"(defaultVersion '{worker or ''}') does not run; its messages wait for a host "
            "that does (host.json versionMatchStrategy / versionFailureStrategy).")


class ProtocolError(DurableError):
    """The Durable SDK returned a state the host cannot interpret."""


class CheckpointConflict(DurableError):
    """Another writer changed the instance's history (sentinel ETag mismatch)."""

    def __init__(self, instance_id: str) -> None:
        self.instance_id = instance_id
        super().__init__(f"History of '{instance_id}' changed under this checkpoint.")


class StartTimeout(DurableError):
    def __init__(self, seconds: float) -> None:
        super().__init__(
            f"The orchestration could not be recorded in storage within {seconds:.0f} "
            "seconds; is Azure Storage (Azurite) reachable?")


class TaskHubNotFound(DurableError):
    """The task hub a command names has never been created in the account."""

    def __init__(self, hub_name: str, where: str) -> None:
        self.hub_name = hub_name
        super().__init__(
            f"Task hub '{hub_name}' does not exist in {where}: no host has run it there "
            "yet. Check extensions.durableTask.hubName in host.json and the storage "
            "connection setting.")


# --- the command line -------------------------------------------------------------------


class CommandError(HostError):
    """A command cannot do what it was asked; the command line exits with `exit_code`
    (2: the request itself is wrong, as for argparse's errors)."""

    def __init__(self, message: str, *, exit_code: int = 1) -> None:
        self.exit_code = exit_code
        super().__init__(message)


class RemoteStorageRefused(CommandError):
    """A command would change storage that is not on this machine without `--yes`."""

    def __init__(self, what: str, where: str) -> None:
        super().__init__(
            f"Refusing to {what}: the storage is not on this machine ({where}). Add --yes "
            "to do it anyway.", exit_code=2)


# --- the test harness (runtime.testing) -----------------------------------------------


class HarnessError(HostError):
    """A test environment cannot do what the test asked (a missing app folder, time
    moved on a real clock, an activity stub for a name the app does not have...)."""


class WaitTimeout(HarnessError, AssertionError):
    """A test environment's wait ran out of time. An AssertionError, so that pytest
    reports a failed test; the message says what the instance was doing, with its
    history."""


def _format_timespan(seconds: float) -> str:
    total = int(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}"
