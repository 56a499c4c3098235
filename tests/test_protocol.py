"""The stream shape, unit by unit: what the SDKs and agents rely on."""

from __future__ import annotations

from souverain.protocol.chat import ChatDelta, ChunkRenderer, Completion
from souverain.protocol.common import Usage


def render(include_usage_chunk: bool) -> list[dict[str, object]]:
    renderer = ChunkRenderer(model="m", include_usage_chunk=include_usage_chunk)
    chunks = []
    for delta in [ChatDelta(content="Bon"), ChatDelta(content="jour"),
                  ChatDelta(finish_reason="stop", usage=Usage(5, 2))]:  # fmt: skip
        chunks += renderer.delta(delta)
    return chunks


def test_role_first_finish_last_usage_on_last_content_chunk() -> None:
    chunks = render(include_usage_chunk=False)
    assert len(chunks) == 3
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": "Bon"}  # type: ignore[index]
    assert [c["choices"][0]["finish_reason"] for c in chunks] == [None, None, "stop"]  # type: ignore[index]
    assert "usage" not in chunks[0] and "usage" not in chunks[1]
    assert chunks[2]["usage"] == {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}


def test_usage_only_chunk_when_asked() -> None:
    chunks = render(include_usage_chunk=True)
    assert len(chunks) == 4
    assert chunks[3]["choices"] == []
    assert chunks[3]["usage"] == {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}
    assert "usage" not in chunks[2]  # once: clients that add chunks up must not count it twice


def test_tool_call_fragments_are_joined() -> None:
    completion = Completion()
    completion.add(
        ChatDelta(
            tool_calls=[
                {"index": 0, "id": "abc123XYZ", "function": {"name": "f", "arguments": '{"a"'}}
            ]
        )
    )
    completion.add(ChatDelta(tool_calls=[{"index": 0, "function": {"arguments": ": 1}"}}]))
    completion.add(ChatDelta(finish_reason="tool_calls"))
    assert completion.tool_calls == [
        {"id": "abc123XYZ", "type": "function", "function": {"name": "f", "arguments": '{"a": 1}'}}
    ]
    assert completion.finish_reason == "tool_calls"
