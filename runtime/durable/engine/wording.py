"""The extension's and the framework's wording of durable failures (pure), kept in one
place so that funclocal's messages match what users search for."""

from __future__ import annotations

from collections.abc import Iterable

_ADDITIONAL = "Additional info: "


def unknown_function(name: str, kind: str, known: Iterable[str]) -> str:
    """DurableTaskExtension's message for a call to a function it does not know;
    `kind` is "activity", "orchestrator" or "entity"."""
    names = list(known)
    message = (f"The function '{name}' doesn't exist, is disabled, or is not an {kind} "
               f"function. {_ADDITIONAL}")
    if names:
        return message + f"The following are the known {kind} functions: '" + \
            "', '".join(names) + "'."
    return message + f"No {kind} functions are currently registered!"


def unknown_activity_message(name: str, known_activities: Iterable[str]) -> str:
    """The extension's wording for a call to an activity that is not registered."""
    return unknown_function(name, "activity", known_activities)


def unknown_orchestrator_message(name: str, known: Iterable[str]) -> str:
    """The extension's wording for starting an orchestrator it does not know (the HTTP
    API and the orchestration trigger say it the same way; GetInvalidOrchestrator-
    FunctionMessage)."""
    return unknown_function(name, "orchestrator", known)


def unknown_entity_message(name: str, known_entities: Iterable[str],
                           known_orchestrators: Iterable[str]) -> str:
    """GetInvalidEntityFunctionMessage: the extension picks its branch by testing the
    *orchestrators* (a defect in its source) but lists the entities, so an app without
    orchestrators hears that no entity functions are registered, and one without entities
    but with orchestrators gets an empty list, `''`."""
    message = (f"The function '{name}' doesn't exist, is disabled, or is not an entity "
               f"function. {_ADDITIONAL}")
    if list(known_orchestrators):
        return message + "The following are the known entity functions: '" + \
            "', '".join(known_entities) + "'."
    return message + "No entity functions are currently registered!"


def orchestrator_failed(name: str, message: str) -> str:
    """The output of a failed orchestration (DTFx's FailOrchestration result)."""
    return f"Orchestrator function '{name}' failed: {message}"


def activity_failed(name: str, detail: str) -> str:
    """TaskFailed.Reason of an activity, as the extension's TaskActivityShim words it."""
    return f"Activity function '{name}' failed: {detail}"


def nondeterministic(detail: str) -> str:
    """DTFx's NonDeterministicOrchestrationException text (its prefix on the detail)."""
    return f"Non-Deterministic workflow detected: {detail}"


def unsupported_action(label: str, action_type: object) -> str:
    return (f"The orchestrator used the Durable action '{label}' (actionType "
            f"{action_type!r}), which this local host does not support yet.")


def too_many_actions(limit: int) -> str:
    return (f"Maximum amount of orchestration actions ({limit}) has been reached. This "
            "value can be configured in host.json file as MaxOrchestrationActions.")


__all__ = ["activity_failed", "nondeterministic", "orchestrator_failed", "too_many_actions",
           "unknown_activity_message", "unknown_entity_message", "unknown_function",
           "unknown_orchestrator_message", "unsupported_action"]
