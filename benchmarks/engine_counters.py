"""vLLM's token counters from its Prometheus ``/metrics``: generated, drafted and accepted tokens, and the
tokens each forward step yielded between two readings (speculative decoding). Standard library only: the
GPU run imports it on a host that has vLLM and little else."""

from __future__ import annotations

import urllib.request

COUNTERS = {
    "generated": "vllm:generation_tokens_total",
    "drafts": "vllm:spec_decode_num_drafts_total",
    "drafted": "vllm:spec_decode_num_draft_tokens_total",
    "accepted": "vllm:spec_decode_num_accepted_tokens_total",
}


def read_counters(metrics_text: str) -> dict[str, float]:
    """vLLM's Prometheus counters of generated, drafted and accepted tokens, summed over their labels
    (a counter the engine has not created yet reads 0)."""
    totals = dict.fromkeys(COUNTERS, 0.0)
    names = {metric: key for key, metric in COUNTERS.items()}
    for line in metrics_text.splitlines():
        if not line or line.startswith("#"):
            continue
        name, _, value = line.rpartition(" ")
        key = names.get(name.split("{", 1)[0])
        if key:
            totals[key] += float(value)
    return totals


def step_yield(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """Tokens per forward step and draft acceptance between two readings: every decode step emits one
    token of its own plus the drafts it accepted, so steps = generated − accepted."""
    generated = after["generated"] - before["generated"]
    accepted = after["accepted"] - before["accepted"]
    drafted = after["drafted"] - before["drafted"]
    steps = generated - accepted
    return {
        "generated_tokens": generated,
        "drafted_tokens": drafted,
        "accepted_tokens": accepted,
        "drafts": after["drafts"] - before["drafts"],
        "tokens_per_step": generated / steps if steps > 0 else float("nan"),
        "acceptance_rate": accepted / drafted if drafted > 0 else float("nan"),
    }


def worker_counters(base_url: str, timeout: float = 30) -> dict[str, float]:
    """The counters of the worker at ``base_url`` (``…/v1`` or its root), read from its ``/metrics``."""
    root = base_url.removesuffix("/").removesuffix("/v1")
    with urllib.request.urlopen(f"{root}/metrics", timeout=timeout) as response:  # noqa: S310 - a local worker
        return read_counters(response.read().decode())
