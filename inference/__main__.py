"""``python -m inference {prepare,serve,command,profiles}``."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys

from inference import profiles
from inference.launcher import model_path_for, serve


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m inference")
    commands = parser.add_subparsers(dest="command", required=True)
    for name, text in (
        ("prepare", "assemble and convert the profile's model (idempotent)"),
        ("serve", "prepare, then run the vLLM worker and restart it if it crashes"),
        ("command", "print the exact vLLM command line of a profile"),
    ):
        sub = commands.add_parser(name, help=text)
        sub.add_argument("--profile", default="cpu-dev", help=f"one of: {', '.join(profiles.available())}")
        if name != "prepare":
            sub.add_argument("--host", default="127.0.0.1")
            sub.add_argument("--port", type=int, default=8011)
            sub.add_argument("--model", help="model path or id (default: the profile's own)")
            sub.add_argument(
                "--set",
                action="append",
                default=[],
                metavar="NAME=VALUE",
                help="override an engine setting of the profile, e.g. --set tensor_parallel_size=2",
            )
    commands.add_parser("profiles", help="list the profiles")
    args = parser.parse_args()

    if args.command == "profiles":
        for name in profiles.available():
            print(f"{name:<20} {profiles.load(name).description}")
        return 0
    try:
        profile = profiles.load(args.profile)
        if args.command != "prepare":
            profile = profiles.with_overrides(profile, _engine_overrides(args.set))
    except profiles.ProfileError as exc:
        parser.error(str(exc))
    if args.command == "prepare":
        print(model_path_for(profile))
        return 0
    if args.command == "command":
        model = args.model or (profile.source.get("model") or "<prepared model folder>")
        print(shlex.join(profiles.vllm_command(profile, model=model, host=args.host, port=args.port)))
        return 0
    return serve(profile, host=args.host, port=args.port, model=args.model)


def _engine_overrides(settings: list[str]) -> dict[str, str]:
    """``MODEL_ENGINE_SETTINGS`` and ``TENSOR_PARALLEL_SIZE`` from the environment (a deploy sets them: the
    first from its configuration, the second from the GPU count), then ``--set``, each later one winning."""
    overrides = _environment_settings(os.environ.get("MODEL_ENGINE_SETTINGS", ""))
    if os.environ.get("TENSOR_PARALLEL_SIZE"):
        overrides["tensor_parallel_size"] = os.environ["TENSOR_PARALLEL_SIZE"]
    for setting in settings:
        name, separator, value = setting.partition("=")
        if not separator:
            raise profiles.ProfileError(f"--set takes NAME=VALUE, not {setting!r}")
        overrides[name.strip()] = value
    return overrides


def _environment_settings(text: str) -> dict[str, str]:
    """``MODEL_ENGINE_SETTINGS``: a JSON object of engine settings, as ``--set`` takes them, for deploys that
    configure the model worker through its environment, e.g. ``{"speculative_config": null}`` (speculation
    off) or ``{"kv_cache_dtype": "fp8", "max_num_seqs": 128}``. ``null`` unsets a setting; an object is
    passed on as JSON."""
    if not text.strip():
        return {}
    try:
        settings = json.loads(text)
    except json.JSONDecodeError as exc:
        raise profiles.ProfileError(f"MODEL_ENGINE_SETTINGS is not JSON: {exc}") from exc
    if not isinstance(settings, dict):
        raise profiles.ProfileError("MODEL_ENGINE_SETTINGS must be a JSON object of engine settings")
    overrides = {}
    for name, value in settings.items():
        if value is None:
            overrides[name] = "none"
        elif isinstance(value, bool):
            overrides[name] = "true" if value else "false"
        elif isinstance(value, dict | list):
            overrides[name] = json.dumps(value)
        else:
            overrides[name] = str(value)
    return overrides


if __name__ == "__main__":
    sys.exit(main())
