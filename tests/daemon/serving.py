"""Waiting on an in-process ``Service.serve()`` task."""
import asyncio
import time


async def until(task: asyncio.Task, condition, timeout: float, what: str):
    """Poll ``condition()`` until it is truthy (returned); fail if ``serve()`` ends or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if task.done():
            raise AssertionError(f"serve() ended before {what}: {task.exception() if not task.cancelled() else 'cancelled'}")
        assert time.monotonic() < deadline, f"{what}: not reached in {timeout:g} s"
        await asyncio.sleep(0.05)
