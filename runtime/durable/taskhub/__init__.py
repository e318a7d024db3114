"""The task hub: one interface (`interface.TaskHub`), two implementations.

- `azure.AzureTaskHub`: DurableTask.AzureStorage's layout in Azurite or a real account,
  in parts by concern: `queues`, `history_table`, `instances_table`, `blobs` (large
  payloads), with `envelope` (the message format) and `operations` (retries, faults);
- `memory.MemoryTaskHub`: the same behaviour in this process, for fast tests.
"""

from runtime.durable.taskhub.interface import HistorySnapshot, QueueMessage, TaskHub

__all__ = ["HistorySnapshot", "QueueMessage", "TaskHub"]
