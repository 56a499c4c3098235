"""Image documents through Pillow: PNG, JPEG, WebP and TIFF (each TIFF frame is a page).

Only those decoders are allowed (`formats=`), and the pixel count is checked before
anything is decoded, so a small file that expands to gigabytes is refused (413).
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import InvalidRequest, PayloadTooLarge

FORMATS = ("PNG", "JPEG", "WEBP", "TIFF")
DEFAULT_DPI = 72


@dataclass(slots=True)
class ImagePage:
    index: int
    dpi: int
    bitmap: np.ndarray  # BGR

    @property
    def width(self) -> int:
        return int(self.bitmap.shape[1])

    @property
    def height(self) -> int:
        return int(self.bitmap.shape[0])


class ImageReader:
    def __init__(self, data: bytes, *, max_pixels: int) -> None:
        self.max_pixels = max_pixels
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                self._image = Image.open(io.BytesIO(data), formats=FORMATS)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise self._too_large() from None
        except (UnidentifiedImageError, OSError, ValueError) as exc:
            raise InvalidRequest(
                f"the image cannot be read ({_reason(exc)}); send a PNG, JPEG, WebP or TIFF",
                param="document",
            ) from None
        self.page_count = int(getattr(self._image, "n_frames", 1))

    def close(self) -> None:
        self._image.close()

    def read(self, index: int) -> ImagePage:
        image = self._image
        try:
            image.seek(index)
            width, height = image.size
            if width * height > self.max_pixels:
                raise self._too_large()
            dpi = image.info.get("dpi", (DEFAULT_DPI, DEFAULT_DPI))[0] or DEFAULT_DPI
            upright = ImageOps.exif_transpose(image)
            rgb = _flatten(upright)
        except (OSError, ValueError, EOFError, SyntaxError) as exc:
            raise InvalidRequest(
                f"the image is corrupt or truncated ({_reason(exc)})", param="document"
            ) from None
        bgr = np.ascontiguousarray(np.asarray(rgb)[:, :, ::-1])
        return ImagePage(index=index, dpi=round(float(dpi)), bitmap=bgr)

    def _too_large(self) -> PayloadTooLarge:
        return PayloadTooLarge(
            f"the image has more than {self.max_pixels} pixels (ocr.max_image_pixels)",
            param="document",
        )


def _flatten(image: Image.Image) -> Image.Image:
    """RGB; transparency over white, the colour of paper."""
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def _reason(exc: BaseException) -> str:
    return str(exc).split("\n")[0][:200] or type(exc).__name__
