"""The batch lane on real engines: a batch line never waits inside the embedded engine's
queue, so a person who calls while a batch runs waits for the rest of one line at most.

The lane's other rules (interactive calls first, the share) are tested in
tests/test_batches.py; bench/batch_throughput.py measures the latency this buys.
"""

from __future__ import annotations

import asyncio

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


def request(text: str) -> ChatCompletionRequest:
    return ChatCompletionRequest.model_validate({
        "model": "m", "messages": [{"role": "user", "content": text}],
        "max_tokens": 2, "temperature": 0})  # fmt: skip


async def answer(engine: LocalLlamaBackend, text: str) -> None:
    async for _ in engine.chat(request(text)):
        pass


@pytest.mark.model
def test_an_interactive_call_waits_for_one_batch_line_at_most() -> None:
    model = served(DeploymentConfig(engine="local", workers=1, n_threads=1, n_ctx=512))
    engine = model.backends[0]
    assert isinstance(engine, LocalLlamaBackend)
    lane = BatchLane(ModelCatalog([model]), share=3)  # more than the engine's one worker
    finished: list[str] = []

    async def line(n: int) -> None:
        async with lane.admitted("m"):
            await answer(engine, f"Count to {n}.")
        finished.append(f"line {n}")

    async def run() -> tuple[int, int]:
        await engine.start()
        try:
            lines = [asyncio.create_task(line(n)) for n in range(3)]
            while engine.queue_depth() == 0:  # noqa: ASYNC110 (the first line is in the engine)
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.3)  # time for more lines to be let in, were they
            ahead = engine.queue_depth()  # what a person calling now waits for
            interactive = asyncio.create_task(answer(engine, "Say hello."))
            await asyncio.sleep(0.3)
            held = engine.queue_depth()  # the batch line and the interactive call
            await interactive
            finished.append("interactive")
            await asyncio.gather(*lines)
            return ahead, held
        finally:
            await engine.close()

    ahead, held = asyncio.run(run())
    assert ahead == 1 and held == 2
    # The interactive call went before every batch line that had not started.
    assert finished[:2] == ["line 0", "interactive"]
    assert sorted(finished) == ["interactive", "line 0", "line 1", "line 2"]
