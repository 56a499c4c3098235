"""Files: `/v1/files` in OpenAI's and Mistral's shapes, stored in the database (docs/files.md)."""
