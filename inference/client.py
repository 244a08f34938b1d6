"""The client Django uses to talk to the model worker over HTTP.

Any OpenAI-compatible endpoint works: our vLLM worker, another vLLM, or a
hosted API, chosen by ``LLM_BASE_URL`` / ``LLM_API_KEY`` / ``LLM_MODEL``.
"""

from __future__ import annotations

import httpx


class ModelWorkerError(Exception):
    """The model worker could not be reached or gave no usable answer."""


async def probe(*, base_url: str, api_key: str, model: str, timeout: float) -> str:
    """Generate one token. vLLM's ``/health`` can answer 200 while its engine is
    stuck, so readiness asks for real work. Returns the token text."""
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    body = {
        "model": model,
        "messages": [{"role": "user", "content": "ping"}],
        "max_tokens": 1,
        "temperature": 0,
    }
    try:
        async with httpx.AsyncClient(timeout=timeout) as client:
            response = await client.post(f"{base_url.rstrip('/')}/chat/completions", json=body, headers=headers)
    except httpx.HTTPError as exc:
        raise ModelWorkerError(f"model worker unreachable at {base_url}: {exc.__class__.__name__}") from exc
    if response.status_code != 200:
        raise ModelWorkerError(f"model worker answered {response.status_code}: {response.text[:200]}")
    try:
        return response.json()["choices"][0]["message"]["content"] or ""
    except (ValueError, KeyError, IndexError) as exc:
        raise ModelWorkerError("model worker returned an unexpected body") from exc
