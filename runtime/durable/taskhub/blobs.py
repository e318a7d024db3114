"""Large payloads of the task hub in the `h-largemessages` container, gzip-compressed as
DurableTask.AzureStorage writes them (queue messages over 45 KB, table properties over
60 KB)."""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import Iterable

from azure.core.exceptions import ResourceNotFoundError
from azure.storage.blob.aio import ContainerClient

from runtime.durable import tablerows as tr
from runtime.durable.taskhub.operations import Operations

_BLOB_CONCURRENCY = 16


class LargePayloads:
    def __init__(self, container: ContainerClient, ops: Operations) -> None:
        self.container = container
        self.ops = ops
        self._slots = asyncio.Semaphore(_BLOB_CONCURRENCY)

    def url(self, name: str) -> str:
        """The blob's URL (what an Instances row holds for a large Input/Output)."""
        return str(self.container.get_blob_client(name).url)

    async def upload(self, name: str, data: bytes) -> None:
        blob = self.container.get_blob_client(name)
        packed = gzip.compress(data, compresslevel=6)

        async def op() -> None:
            async with self._slots:
                await blob.upload_blob(packed, overwrite=True)
        await self.ops.run(op, f"uploading blob {name}")

    async def upload_all(self, offloads: Iterable[tr.Offload]) -> None:
        await asyncio.gather(*(self.upload(o.blob_name, o.text.encode("utf-8"))
                               for o in offloads))

    async def download(self, name: str) -> str:
        """The text stored in a blob (ResourceNotFoundError if gone)."""
        blob = self.container.get_blob_client(name)

        async def op() -> bytes:
            async with self._slots:
                return bytes(await (await blob.download_blob()).readall())
        data = await self.ops.run(op, f"downloading blob {name}", keep=(ResourceNotFoundError,))
        try:
            return gzip.decompress(data).decode("utf-8")
        except (OSError, EOFError):
            return data.decode("utf-8")  # written uncompressed by another tool

    async def download_all(self, names: Iterable[str]) -> dict[str, str]:
        unique = list(dict.fromkeys(names))
        texts = await asyncio.gather(*(self.download(n) for n in unique))
        return dict(zip(unique, texts, strict=True))

    async def delete_prefix(self, prefix: str) -> None:
        async def listing() -> list[str]:
            return [b.name async for b in self.container.list_blobs(name_starts_with=prefix)]
        names = await self.ops.run(listing, f"listing blobs under {prefix}")

        async def delete(name: str) -> None:
            async def op() -> None:
                async with self._slots:
                    try:
                        await self.container.delete_blob(name)
                    except ResourceNotFoundError:
                        pass
            await self.ops.run(op, f"deleting blob {name}")
        await asyncio.gather(*(delete(n) for n in names))

    async def close(self) -> None:
        await self.container.close()


__all__ = ["LargePayloads"]
