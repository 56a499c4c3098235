"""`POST /v1/ocr`: Mistral's OCR request and response, as its SDK (mistralai 3.x) sends them.

Fields follow the order of the SDK's `OCRRequest`. Accepted and acted on: `model`,
`document` (a `document_url` or `image_url` chunk; a `file` chunk is refused, there is
no Files API here), `pages`, `include_image_base64`, `image_limit`, `image_min_size`,
`document_annotation_format`, `document_annotation_prompt`, `include_blocks`,
`confidence_scores_granularity` ("page", "block"). Accepted and ignored (no layout
model to act on them): `table_format`, `extract_header`, `extract_footer`. Refused:
`bbox_annotation_format` (it needs a vision model), `confidence_scores_granularity`
"word" (the engine scores lines, not words).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, GetJsonSchemaHandler, field_validator, model_validator
from pydantic.config import JsonDict
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

from .chat import NEEDS_SCHEMA, ResponseFormat
from .common import REFUSED, APIModel

# In the document: a document is sent inline, as a data: URL, its scheme read without
# regard to case. Only documented, not validated here: where ocr.fetch_urls is on, http(s)
# URLs are fetched too (ocr/documents.py refuses the rest, 400).
DATA_URL: JsonDict = {"pattern": r"^[Dd][Aa][Tt][Aa]:"}


class DocumentURLChunk(APIModel):
    type: Literal["document_url"] = "document_url"
    document_url: str = Field(min_length=1, json_schema_extra=DATA_URL)
    document_name: str | None = None


class ImageURL(APIModel):
    url: str = Field(min_length=1, json_schema_extra=DATA_URL)
    detail: str | None = None


class ImageURLChunk(APIModel):
    type: Literal["image_url"] = "image_url"
    image_url: Annotated[str, Field(min_length=1, json_schema_extra=DATA_URL)] | ImageURL

    @property
    def url(self) -> str:
        return self.image_url if isinstance(self.image_url, str) else self.image_url.url


class FileChunk(APIModel):
    """Read so that its refusal names it (there is no Files API here, api/ocr.py): the
    document shows it as a chunk no request may send."""

    type: Literal["file"] = "file"
    file_id: str = Field(min_length=1)

    @classmethod
    def __get_pydantic_json_schema__(
        cls, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return REFUSED


DocumentChunk = Annotated[DocumentURLChunk | ImageURLChunk | FileChunk, Field(discriminator="type")]
TYPE_BY_KEY = {"document_url": "document_url", "image_url": "image_url", "file_id": "file"}


def _json_schema_type(schema: dict[str, Any]) -> None:
    schema.update(NEEDS_SCHEMA)
    schema["properties"]["type"] = {"const": "json_schema"}
    schema["required"] = ["type", "json_schema"]


class AnnotationFormat(ResponseFormat):
    """An annotation format: only type json_schema (`_json_schema_only` refuses the rest)."""

    model_config = ConfigDict(json_schema_extra=_json_schema_type)


class OCRRequest(APIModel):
    # What `_prompt_needs_format` checks: a prompt needs a format.
    model_config = ConfigDict(
        json_schema_extra={
            "if": {
                "required": ["document_annotation_prompt"],
                "properties": {"document_annotation_prompt": {"type": "string", "minLength": 1}},
            },
            "then": {
                "required": ["document_annotation_format"],
                "properties": {"document_annotation_format": {"type": "object"}},
            },
        }
    )

    model: str | None = None  # None: the gateway's OCR model
    document: DocumentChunk
    pages: list[int] | str | None = None
    include_image_base64: bool | None = None
    image_limit: int | None = Field(default=None, ge=0)
    image_min_size: int | None = Field(default=None, ge=0)
    bbox_annotation_format: AnnotationFormat | None = None
    document_annotation_format: AnnotationFormat | None = None
    document_annotation_prompt: str | None = None
    table_format: Literal["markdown", "html"] | None = None
    extract_header: bool | None = None
    extract_footer: bool | None = None
    include_blocks: bool | None = None
    confidence_scores_granularity: Literal["word", "page", "block"] | None = None

    @field_validator("document", mode="before")
    @classmethod
    def _chunk_type(cls, value: Any) -> Any:
        """Mistral's own curl examples omit `type`: tell the chunk by its key."""
        if isinstance(value, dict) and "type" not in value:
            for key, chunk_type in TYPE_BY_KEY.items():
                if key in value:
                    return {**value, "type": chunk_type}
        return value

    @field_validator("document_annotation_format", "bbox_annotation_format")
    @classmethod
    def _json_schema_only(cls, value: ResponseFormat | None) -> ResponseFormat | None:
        if value is not None and value.type != "json_schema":
            raise ValueError("only type json_schema is valid here")
        return value

    @model_validator(mode="after")
    def _prompt_needs_format(self) -> OCRRequest:
        if self.document_annotation_prompt and self.document_annotation_format is None:
            raise ValueError("document_annotation_prompt needs a document_annotation_format")
        return self

    @field_validator("pages")
    @classmethod
    def _page_list(cls, value: list[int] | str | None) -> list[int] | None:
        """Sorted, without repeats; the string form ('0,2-4') becomes a list."""
        if value is None:
            return None
        numbers = parse_page_ranges(value) if isinstance(value, str) else value
        if not numbers:
            raise ValueError("pages must not be empty; leave it out for every page")
        for number in numbers:
            if number < 0:
                raise ValueError(f"page {number} is negative; pages count from 0")
        return sorted(set(numbers))

    def page_indexes(self) -> list[int] | None:
        """The 0-based pages asked for; None: all of them."""
        return None if isinstance(self.pages, str) else self.pages

    def annotation_schema(self) -> dict[str, Any] | None:
        fmt = self.document_annotation_format
        if fmt is None or fmt.json_schema is None:
            return None
        return fmt.json_schema.schema_


def parse_page_ranges(text: str) -> list[int]:
    """'0,2-4' -> [0, 2, 3, 4]: the string form the SDK documents."""
    numbers: list[int] = []
    for part in text.replace(" ", "").split(","):
        if not part:
            continue
        first, dash, last = part.partition("-")
        if not first.isdigit() or (dash and not last.isdigit()):
            raise ValueError(f"{part!r} is not a page number or a range such as 2-4")
        start, end = int(first), int(last) if dash else int(first)
        if end < start:
            raise ValueError(f"the range {part!r} runs backwards")
        if end - start > 100_000:
            raise ValueError(f"the range {part!r} is too long")
        numbers.extend(range(start, end + 1))
    if not numbers:
        raise ValueError("no page numbers given")
    return numbers


# ---- what the OCR produces -----------------------------------------------------------


@dataclass(slots=True)
class Box:
    left: float
    top: float
    right: float
    bottom: float

    def corners(self) -> dict[str, int]:
        return {
            "top_left_x": round(self.left),
            "top_left_y": round(self.top),
            "bottom_right_x": round(self.right),
            "bottom_right_y": round(self.bottom),
        }


@dataclass(slots=True)
class PageImage:
    id: str  # "img-0.jpeg", numbered across the document as Mistral does
    box: Box
    image_base64: str | None = None  # a data: URL


@dataclass(slots=True)
class PageBlock:
    type: Literal["text", "title", "image"]
    box: Box
    content: str
    scores: list[float] = field(default_factory=list)
    image_id: str | None = None


@dataclass(slots=True)
class PageResult:
    index: int
    markdown: str
    dpi: int
    width: int
    height: int
    images: list[PageImage] = field(default_factory=list)
    blocks: list[PageBlock] = field(default_factory=list)
    source: Literal["text_layer", "ocr"] = "ocr"

    def scores(self) -> list[float]:
        return [score for block in self.blocks for score in block.scores]


def render_ocr(
    pages: list[PageResult],
    *,
    model: str,
    doc_size_bytes: int,
    include_blocks: bool,
    granularity: str | None,
    document_annotation: str | None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "pages": [
            _render_page(page, include_blocks=include_blocks, granularity=granularity)
            for page in pages
        ],
        "model": model,
        "usage_info": {"pages_processed": len(pages), "doc_size_bytes": doc_size_bytes},
    }
    if document_annotation is not None:
        body["document_annotation"] = document_annotation
    return body


def _render_page(
    page: PageResult, *, include_blocks: bool, granularity: str | None
) -> dict[str, Any]:
    rendered: dict[str, Any] = {
        "index": page.index,
        "markdown": page.markdown,
        "images": [_render_image(image) for image in page.images],
        "dimensions": {"dpi": page.dpi, "height": page.height, "width": page.width},
        "tables": [],
        "hyperlinks": [],
        "header": None,
        "footer": None,
    }
    if granularity is not None:
        rendered["confidence_scores"] = _confidence(page.scores())
    if include_blocks:
        rendered["blocks"] = [
            _render_block(block, with_scores=granularity == "block") for block in page.blocks
        ]
    return rendered


def _render_image(image: PageImage) -> dict[str, Any]:
    return {"id": image.id, **image.box.corners(), "image_base64": image.image_base64}


def _render_block(block: PageBlock, *, with_scores: bool) -> dict[str, Any]:
    rendered: dict[str, Any] = {"type": block.type, **block.box.corners(), "content": block.content}
    if block.image_id is not None:
        rendered["image_id"] = block.image_id
    if with_scores:
        scores = block.scores
        rendered["confidence_scores"] = {
            "average_content_confidence_score": _mean(scores),
            "minimum_content_confidence_score": round(min(scores), 4) if scores else None,
            "block_type_confidence_score": None,
        }
    return rendered


def _confidence(scores: list[float]) -> dict[str, float]:
    # A page with no text has nothing to doubt.
    if not scores:
        return {"average_page_confidence_score": 1.0, "minimum_page_confidence_score": 1.0}
    return {
        "average_page_confidence_score": round(sum(scores) / len(scores), 4),
        "minimum_page_confidence_score": round(min(scores), 4),
    }


def _mean(scores: list[float]) -> float | None:
    return round(sum(scores) / len(scores), 4) if scores else None
