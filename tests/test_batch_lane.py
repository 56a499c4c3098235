"""The batch lane on real engines: a batch line never waits inside the embedded engine's
queue, so a person who calls while a batch runs waits for the rest of one line at most.

The lane's other rules (interactive calls first, the share) are tested in
tests/test_batches.py; bench/batch_throughput.py measures the latency this buys.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from souverain.backends.local_llama import LocalLlamaBackend
from souverain.backends.openai_compat import OpenAIBackend
from souverain.batch.lane import BatchLane, engine_slots
from souverain.config import DeploymentConfig, ModelConfig
from souverain.protocol.chat import ChatCompletionRequest
from souverain.routing.models import ModelCatalog, ServedModel


def served(*deployments: DeploymentConfig) -> ServedModel:
    config = ModelConfig(id="m", deployments=deployments)
    engines = {"local": LocalLlamaBackend, "openai": OpenAIBackend}
    return ServedModel(config=config, backends=[engines[d.engine](config, d) for d in deployments])


def test_the_share_is_capped_by_local_workers_only() -> None:
    local = DeploymentConfig(engine="local")
    remote = DeploymentConfig(engine="openai", base_url="http://127.0.0.1:9/v1")
    assert engine_slots(served(local)) == 1
    assert engine_slots(served(DeploymentConfig(engine="local", workers=3))) == 3
    # A remote engine's parallelism is not known here: the share alone bounds it.
    assert engine_slots(served(remote)) is None
    assert engine_slots(served(local, remote)) is None

    async def at_once(model: ServedModel, share: int) -> int:
        lane = BatchLane(ModelCatalog([model]), share=share)
        inside, most = 0, 0

        async def line() -> None:
            nonlocal inside, most
            async with lane.admitted("m"):
                inside += 1
                most = max(most, inside)
                await asyncio.sleep(0.05)
                inside -= 1

        await asyncio.gather(*(line() for _ in range(6)))
        return most

    assert asyncio.run(at_once(served(remote), 4)) == 4
    assert asyncio.run(at_once(served(DeploymentConfig(engine="local", workers=2)), 4)) == 2


def request(text: str, max_tokens: int) -> ChatCompletionRequest:
    return ChatCompletionRequest.model_validate({
        "model": "m", "messages": [{"role": "user", "content": text}],
        "max_tokens": max_tokens, "temperature": 0})  # fmt: skip


async def answer(engine: LocalLlamaBackend, text: str, max_tokens: int) -> None:
    async for _ in engine.chat(request(text, max_tokens)):
        pass


@pytest.mark.model
def test_an_interactive_call_waits_for_one_batch_line_at_most() -> None:
    model = served(DeploymentConfig(engine="local", workers=1, n_threads=1, n_ctx=512))
    engine = model.backends[0]
    assert isinstance(engine, LocalLlamaBackend)
    lane = BatchLane(ModelCatalog([model]), share=3)  # more than the engine's one worker
    finished: list[int] = []
    depths: list[int] = []

    async def line(n: int) -> None:
        async with lane.admitted("m"):
            await answer(engine, f"Count from {n} to {n + 40}.", 24)
        finished.append(n)

    async def run() -> int:
        await engine.start()
        try:
            lines = [asyncio.create_task(line(n)) for n in range(3)]
            started = time.monotonic()
            while time.monotonic() - started < 0.3 or engine.queue_depth() == 0:
                assert not all(task.done() for task in lines), "the batch ended too soon"
                depths.append(engine.queue_depth())  # batch lines alone in the engine
                await asyncio.sleep(0.005)
            before = len(finished)
            await answer(engine, "Say hello.", 2)  # a person's call, while a line runs
            overtaken = len(finished) - before  # batch lines answered while it waited
            await asyncio.gather(*lines)
            return overtaken
        finally:
            await engine.close()

    overtaken = asyncio.run(run())
    assert max(depths) == 1  # one batch line in the engine at a time, never a queue
    assert overtaken <= 1  # the call waited for the rest of the running line at most
    assert sorted(finished) == [0, 1, 2]
