"""The model worker: launch profiles, the process that starts vLLM, and the client Django uses."""
