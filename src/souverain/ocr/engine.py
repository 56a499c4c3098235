"""The OCR engine: RapidOCR 3 with the PP-OCRv6 models that ship inside its wheel.

Detection (PP-OCRv6 small) and recognition (PP-OCRv6 small, one model for Latin
scripts, Chinese and Japanese) run on ONNX Runtime; the line-orientation classifier is
off (see `_load`). The model files are passed by path, so RapidOCR never takes its
download branch: a missing file is an error at load, not a fetch from the network.

Loaded on first use (about 0.5 s), then kept. One `OcrEngine` serves concurrent pages:
ONNX Runtime sessions may run from several threads.
"""

from __future__ import annotations

import importlib.util
import logging
import threading
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import EngineUnavailable
from ..protocol.ocr import Box
from .layout import Line

MODELS = {
    "Det": "PP-OCRv6_det_small.onnx",
    "Cls": "ch_ppocr_mobile_v2.0_cls_mobile.onnx",
    "Rec": "PP-OCRv6_rec_small.onnx",
}
INK = 200  # darker than this (0-255, darkest channel) is not paper
CROP_MARGIN = 32
ENGINE_NAME = "rapidocr 3.10 (PP-OCRv6 small det + rec, ONNX Runtime)"


def models_dir() -> Path:
    spec = importlib.util.find_spec("rapidocr")
    if spec is None or spec.origin is None:
        raise EngineUnavailable("the OCR engine is not installed (pip install rapidocr)")
    return Path(spec.origin).parent / "models"


class OcrEngine:
    def __init__(self, threads: int | None = None, params: dict[str, Any] | None = None) -> None:
        self.threads = threads
        self.params = dict(params or {})  # RapidOCR settings over ours (benchmarks)
        self._ocr: Any = None
        self._lock = threading.Lock()

    @property
    def loaded(self) -> bool:
        return self._ocr is not None

    def load(self) -> Any:
        if self._ocr is None:
            with self._lock:
                if self._ocr is None:
                    self._ocr = _load(self.threads, self.params)
        return self._ocr

    def recognize(self, bitmap: np.ndarray) -> list[Line]:
        """Text lines of a BGR image, boxes in its pixels."""
        crop = content_box(bitmap)
        if crop is None:
            return []  # a blank page
        left, top, right, bottom = crop
        result = self.load()(np.ascontiguousarray(bitmap[top:bottom, left:right]))
        if result.boxes is None or result.txts is None:
            return []
        lines = []
        for quad, text, score in zip(result.boxes, result.txts, result.scores, strict=False):
            xs = [float(point[0]) + left for point in quad]
            ys = [float(point[1]) + top for point in quad]
            box = Box(min(xs), min(ys), max(xs), max(ys))
            lines.append(Line(text=str(text), box=box, score=float(score)))
        return lines


def content_box(bitmap: np.ndarray, margin: int = CROP_MARGIN) -> tuple[int, int, int, int] | None:
    """The part of the page that is not blank paper, with a margin; None for a blank page.

    The detector reads a mostly empty page poorly (a lone line on an A4 page at 150 dpi
    is not found at all), so it is given the inked area only; it is faster, too.
    """
    ink = bitmap.min(axis=2) < INK if bitmap.ndim == 3 else bitmap < INK
    rows = np.flatnonzero(ink.any(axis=1))
    cols = np.flatnonzero(ink.any(axis=0))
    if rows.size == 0:
        return None
    height, width = ink.shape
    return (
        max(0, int(cols[0]) - margin),
        max(0, int(rows[0]) - margin),
        min(width, int(cols[-1]) + 1 + margin),
        min(height, int(rows[-1]) + 1 + margin),
    )


def _load(threads: int | None, extra: dict[str, Any]) -> Any:
    directory = models_dir()
    # The line-orientation classifier flips some upright lines (measured: 3 lines out of
    # 50 on a clean page, read as garbage); pages upside down are rarer than that.
    # Detection sees the inked area at most 1280 pixels long, rather than RapidOCR's
    # default of upscaling its short side to 736: as accurate, and up to 10 times faster
    # on sparse pages (docs/ocr.md).
    params: dict[str, Any] = {
        "Global.log_level": "error",
        "Global.use_cls": False,
        "Det.limit_type": "max",
        "Det.limit_side_len": 1280,
    }
    for stage, name in MODELS.items():
        path = directory / name
        if not path.is_file():
            raise EngineUnavailable(f"OCR model file missing: {path}; reinstall rapidocr")
        params[f"{stage}.model_path"] = str(path)
    if threads is not None:
        params["EngineConfig.onnxruntime.intra_op_num_threads"] = threads
        params["EngineConfig.onnxruntime.inter_op_num_threads"] = 1
    params.update(extra)
    try:
        from rapidocr import RapidOCR
    except ImportError as exc:  # onnxruntime or OpenCV missing
        raise EngineUnavailable(f"the OCR engine cannot load: {exc}") from None
    engine = RapidOCR(params=params)
    logging.getLogger("RapidOCR").setLevel(logging.ERROR)  # "no text found" is no warning
    return engine
