"""instructor (structured output through tools or JSON schema) against Souverain, unchanged."""

from __future__ import annotations

from datetime import date

import instructor
import openai
import pytest
from pydantic import BaseModel, Field

from .conftest import Target

pytestmark = pytest.mark.model


class Invoice(BaseModel):
    """An invoice read from a sentence."""

    number: int = Field(ge=1)
    total_eur: float = Field(ge=0)
    issued: date


class Customer(BaseModel):
    name: str = Field(min_length=1, max_length=20)
    city: str = Field(min_length=1, max_length=20)


PROMPT = "Invoice 42 of 2026-11-30: 120.50 EUR. Extract the invoice."


def patched(target: Target, mode: instructor.Mode) -> instructor.Instructor:
    return instructor.from_openai(
        openai.OpenAI(base_url=target.v1, api_key=target.key, max_retries=0), mode=mode
    )


@pytest.mark.parametrize("mode", [instructor.Mode.TOOLS, instructor.Mode.JSON_SCHEMA])
def test_response_model_conforms(target: Target, mode: instructor.Mode) -> None:
    # max_retries=1: one attempt. Souverain's output must conform the first time.
    invoice = patched(target, mode).chat.completions.create(
        model=target.chat,
        response_model=Invoice,
        max_retries=1,
        max_tokens=64,
        messages=[{"role": "user", "content": PROMPT}],
    )
    assert isinstance(invoice, Invoice)
    assert invoice.number >= 1 and invoice.total_eur >= 0


def test_partial_stream_ends_with_a_valid_object(target: Target) -> None:
    # (instructor validates partial objects strictly: a `date` field fails there whatever
    # the server sends, so this model has strings only.)
    partials = list(
        patched(target, instructor.Mode.TOOLS).chat.completions.create_partial(
            model=target.chat,
            response_model=Customer,
            max_retries=1,
            max_tokens=48,
            messages=[{"role": "user", "content": "Marie Curie lives in Paris. Extract."}],
        )
    )
    # Souverain sends each tool call whole, in one delta (the mistralai SDK needs it), so
    # instructor may see a single partial: the last one must be complete and valid.
    assert partials
    final = Customer.model_validate(partials[-1].model_dump())
    assert final.name and final.city
