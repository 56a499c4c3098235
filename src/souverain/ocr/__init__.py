"""Local OCR for `POST /v1/ocr` (docs/ocr.md); the library parsers reuse its readers.

documents    the bytes: data: URLs, http(s) only if configured     documents.py
readers      PDF pages (text layer or render), image frames         pdf.py, images.py
engine       RapidOCR, PP-OCRv6 models from its wheel, lazy         engine.py
layout       lines → columns → paragraphs, titles → markdown        columns.py, layout.py
service      page selection, bounded worker queue (503 when full)   service.py
annotation   document_annotation_format through the pipeline        annotation.py
"""
