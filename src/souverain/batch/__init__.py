"""The Batch APIs of OpenAI (`/v1/batches`) and Mistral (`/v1/batch/jobs`), run as jobs
(jobs/) whose every line is a pipeline call as the submitter (docs/batches.md)."""
