"""Document libraries (`/v1/libraries`, Mistral's shapes; docs/libraries.md).

acl          levels (viewer, editor, owner) and the access filter of every query   acl.py
store        libraries and shares (store.py); documents, chunks, keyword index (documents.py)
parsers      PDF (text layer, else OCR), DOCX, HTML, Markdown, text, images        parsers.py
chunker      pages → chunks with page and character offsets                        chunker.py
embedder     chunk and query embeddings, through the pipeline as the caller         embedder.py
ingest job   parse, chunk, embed one upload: a `library.ingest` job (docs/jobs.md) ingest_job.py
search       hybrid: BM25 + exact vectors (vectors.py), reciprocal rank fusion      search.py
service      what the routes and the grounded chat call (service.py, document_service.py)
cli          `souverain library ingest PATH... --library NAME`                     cli.py
"""
