"""``python -m stack run``: the whole product on localhost (what ``make run`` calls).

Embedded defaults: PostgreSQL + pgvector when DATABASE_URL is unset, a local
Redis when REDIS_URL is unset, our vLLM worker on the CPU when LLM_BASE_URL
is unset, and the sandbox carrier when CARRIER_API_BASE_URL is unset. Data
lives under var/ and is reused by the next run.
"""

from __future__ import annotations

import argparse
import os
import sys

from stack.defaults import (
    BASE_DIR,
    CARRIER_SANDBOX_PORT,
    EMBEDDED_DATABASE_URL,
    EMBEDDED_PG_DB,
    EMBEDDED_PG_PORT,
    EMBEDDED_PG_USER,
    EMBEDDED_REDIS_PORT,
    EMBEDDED_REDIS_URL,
    LOCAL_CARRIER_URL,
    LOCAL_MODEL_WORKER_URL,
    MODEL_WORKER_PORT,
    SANDBOX_CARRIER_API_KEY,
    VAR_DIR,
)
from stack.postgres import EmbeddedPostgres, EmbeddedPostgresError
from stack.redis import redis_server_command, wait_for_redis
from stack.supervisor import StartupError, Supervisor, http_ok, require_free_port

PYTHON = sys.executable


def run(args: argparse.Namespace) -> int:
    port = int(os.environ.get("PORT", "8000"))
    env = dict(os.environ)
    env.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
    env["PYTHONUNBUFFERED"] = "1"
    env.setdefault("LOG_FORMAT", "plain")
    supervisor = Supervisor(base_env=env, cwd=BASE_DIR)
    supervisor.install_signal_handlers()
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    try:
        require_free_port(port, "web site", "PORT")

        if not os.environ.get("DATABASE_URL"):
            postgres = EmbeddedPostgres(
                data_dir=VAR_DIR / "postgres",
                port=EMBEDDED_PG_PORT,
                superuser=EMBEDDED_PG_USER,
                database=EMBEDDED_PG_DB,
            )
            if not postgres.is_running():
                require_free_port(EMBEDDED_PG_PORT, "embedded PostgreSQL", "EMBEDDED_PG_PORT")
            if postgres.ensure_initialized():
                supervisor.say(f"created a new PostgreSQL cluster in {postgres.data_dir}")
            supervisor.say(f"starting PostgreSQL on 127.0.0.1:{EMBEDDED_PG_PORT}")
            postgres.start()
            supervisor.on_shutdown.append(lambda: (supervisor.say("stopping PostgreSQL"), postgres.stop()))
            env["DATABASE_URL"] = EMBEDDED_DATABASE_URL

        if not os.environ.get("REDIS_URL"):
            require_free_port(EMBEDDED_REDIS_PORT, "embedded Redis", "EMBEDDED_REDIS_PORT")
            redis_child = supervisor.start(
                "redis",
                redis_server_command(port=EMBEDDED_REDIS_PORT, data_dir=VAR_DIR / "redis", persist=True),
            )
            wait_for_redis(EMBEDDED_REDIS_URL, timeout=15, process=redis_child.process)
            env["REDIS_URL"] = EMBEDDED_REDIS_URL

        supervisor.run_once("migrate", [PYTHON, "manage.py", "migrate", "--noinput"])
        supervisor.run_once("setup", [PYTHON, "manage.py", "bootstrap_demo"])

        if not os.environ.get("LLM_BASE_URL"):
            require_free_port(MODEL_WORKER_PORT, "model worker", "MODEL_WORKER_PORT")
            profile = os.environ.get("MODEL_PROFILE", "cpu-dev")
            supervisor.start(
                "model",
                [PYTHON, "-m", "inference", "serve", "--profile", profile, "--port", str(MODEL_WORKER_PORT)],
            )
            env["LLM_BASE_URL"] = LOCAL_MODEL_WORKER_URL

        if not os.environ.get("CARRIER_API_BASE_URL"):
            require_free_port(CARRIER_SANDBOX_PORT, "sandbox carrier", "CARRIER_SANDBOX_PORT")
            env["CARRIER_API_KEY"] = os.environ.get("CARRIER_API_KEY") or SANDBOX_CARRIER_API_KEY
            carrier = supervisor.start(
                "carrier",
                [PYTHON, "-m", "apps.orders.sandbox_carrier", "--port", str(CARRIER_SANDBOX_PORT)],
                # The key travels in the environment, not on the command line (visible in ps).
                env={"CARRIER_SANDBOX_API_KEY": env["CARRIER_API_KEY"]},
            )
            supervisor.wait_until(
                "the sandbox carrier",
                lambda: http_ok(f"{LOCAL_CARRIER_URL}/healthz"),
                timeout=30,
                child=carrier,
            )
            env["CARRIER_API_BASE_URL"] = LOCAL_CARRIER_URL

        web = supervisor.start(
            "web",
            [
                PYTHON,
                "-m",
                "uvicorn",
                "config.asgi:application",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--timeout-graceful-shutdown",
                "5",
                "--no-access-log",
                "--lifespan",
                "off",
            ],
        )
        supervisor.wait_until(
            "the web site", lambda: http_ok(f"http://127.0.0.1:{port}/healthz"), timeout=60, child=web
        )
        concurrency = os.environ.get("CELERY_CONCURRENCY", "2")
        supervisor.start(
            "worker",
            [
                PYTHON,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                "-l",
                "INFO",
                "-c",
                concurrency,
                "-n",
                "worker@%h",
            ],
        )
        supervisor.start(
            "beat",
            [
                PYTHON,
                "-m",
                "celery",
                "-A",
                "config",
                "beat",
                "-l",
                "INFO",
                "-s",
                str(VAR_DIR / "celerybeat-schedule"),
            ],
        )
        supervisor.say(
            f"ready: http://127.0.0.1:{port}/  (health: /readyz, admin: /admin/). Ctrl-C stops everything."
        )
        if not os.environ.get("LLM_BASE_URL"):
            supervisor.say(
                "the model worker prepares and loads its model in the background; /readyz turns green once it answers"
            )
        return supervisor.watch()
    except (StartupError, EmbeddedPostgresError, TimeoutError, RuntimeError) as exc:
        supervisor.say(f"cannot start: {exc}")
        return 2
    finally:
        supervisor.stop_all()
        supervisor.say("stopped")


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m stack")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("run", help="start the whole stack in the foreground")
    args = parser.parse_args()
    if args.command == "run":
        return run(args)
    return 2


if __name__ == "__main__":
    sys.exit(main())
