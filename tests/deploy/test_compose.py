"""deploy/compose: the file parses, matches the compose-spec schema, and runs what the profiles say.

No Docker engine here: ``docker compose config`` runs only where a docker CLI with the compose plugin
exists. The compose-spec JSON schema is the copy check-jsonschema ships (vendor/compose-spec.json, with
its Apache-2.0 license in vendor/licenses/)."""

from __future__ import annotations

import json
import shutil
import subprocess
from importlib import resources

import jsonschema
import pytest

from inference import profiles
from tests.deploy.conftest import BASE_DIR, COMPOSE_FILE, DEPLOY, compose_raw, compose_resolved

APP_SERVICES = ("migrate", "web", "celery-worker", "celery-beat")


def compose_schema() -> dict:
    vendor = resources.files("check_jsonschema.builtin_schemas.vendor")
    return json.loads((vendor / "compose-spec.json").read_text(encoding="utf-8"))


def gpu_profiles() -> list[profiles.Profile]:
    return [profiles.load(name) for name in profiles.available() if profiles.load(name).device == "gpu"]


def test_compose_file_matches_the_compose_spec_before_and_after_interpolation() -> None:
    schema = compose_schema()
    jsonschema.validate(compose_raw(), schema)
    jsonschema.validate(compose_resolved(), schema)


def test_required_variables_fail_loudly_when_missing() -> None:
    with pytest.raises(KeyError, match="SITE_HOST"):
        compose_resolved({})


def test_every_service_has_a_health_check_and_a_restart_policy() -> None:
    services = compose_resolved()["services"]
    assert set(services) >= {*APP_SERVICES, "model-worker", "postgres", "redis", "nginx"}
    for name, service in services.items():
        if name == "migrate":  # one-shot: the others wait for it to complete
            assert service["restart"] == "no"
            continue
        assert service["restart"] == "unless-stopped", name
        assert service["healthcheck"]["test"], name


def test_services_start_in_order() -> None:
    services = compose_resolved()["services"]
    for name in ("web", "celery-worker", "celery-beat"):
        assert services[name]["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
    assert services["migrate"]["depends_on"]["postgres"] == {"condition": "service_healthy"}
    assert services["nginx"]["depends_on"]["web"] == {"condition": "service_healthy"}


def test_web_health_check_is_liveness_not_readiness() -> None:
    """/readyz needs the model worker, which takes minutes to load; nginx waits on web's health."""
    check = " ".join(compose_resolved()["services"]["web"]["healthcheck"]["test"])
    assert "/healthz" in check and "/readyz" not in check


def test_data_lives_in_named_volumes() -> None:
    config = compose_resolved()
    services = config["services"]
    named = set(config["volumes"])
    assert "postgres-data:/var/lib/postgresql/data" in services["postgres"]["volumes"]
    assert "redis-data:/data" in services["redis"]["volumes"]
    assert "media:/app/var/media" in services["web"]["volumes"]
    assert "media:/app/var/media" in services["celery-worker"]["volumes"]
    assert any(volume.startswith("hf-cache:") for volume in services["model-worker"]["volumes"])
    assert {"postgres-data", "redis-data", "media", "hf-cache"} <= named


def test_the_model_workers_compiled_kernels_survive_a_restart() -> None:
    """vLLM's, DeepGEMM's (under vLLM's cache root) and Triton's caches point into a named volume."""
    config = compose_resolved()
    worker = config["services"]["model-worker"]
    mounts = {
        volume.split(":")[1]: volume.split(":")[0]
        for volume in worker["volumes"]
        if volume.split(":")[0] in config["volumes"]
    }
    for variable in ("VLLM_CACHE_ROOT", "TRITON_CACHE_DIR"):
        path = worker["environment"][variable]
        assert any(path.startswith(mount + "/") for mount in mounts), (variable, path, mounts)


def test_redis_persists_with_aof() -> None:
    command = compose_resolved()["services"]["redis"]["command"]
    assert command[command.index("--appendonly") + 1] == "yes"


def test_postgres_is_the_pgvector_image() -> None:
    assert compose_resolved()["services"]["postgres"]["image"].startswith("pgvector/pgvector:")


def test_secrets_are_files_the_generator_writes() -> None:
    config = compose_resolved()
    script = (DEPLOY / "compose" / "make-secrets.sh").read_text(encoding="utf-8")
    for name, secret in config["secrets"].items():
        assert secret["file"] == f"./secrets/{name}"
        assert name in script, f"make-secrets.sh does not create secrets/{name}"
    environment = config["services"]["web"]["environment"]
    for variable in ("DJANGO_SECRET_KEY", "DATABASE_URL", "LLM_API_KEY", "CARRIER_API_KEY", "METRICS_TOKEN"):
        assert environment[f"{variable}_FILE"].startswith("/run/secrets/")
        assert variable not in environment, f"{variable} must come from its file, not compose.yaml"


@pytest.mark.parametrize("gpu_count", ["1", "8"])
def test_model_worker_runs_our_launcher_on_the_profiles_image(gpu_count: str) -> None:
    """One source of truth: the image is the GPU profiles' [deploy] image, the command is the launcher,
    and the tensor-parallel size follows the GPUs reserved for the container."""
    from tests.deploy.conftest import env_example_active

    env = {**env_example_active(), "GPU_COUNT": gpu_count}
    worker = compose_resolved(env)["services"]["model-worker"]
    assert {profile.deploy["image"] for profile in gpu_profiles()} == {worker["image"]}
    assert worker["entrypoint"] == ["python3", "-m", "inference", "serve"]
    command = worker["command"]
    assert command[command.index("--profile") + 1] in profiles.available()
    assert command[command.index("--port") + 1] == "8000"
    assert worker["environment"]["TENSOR_PARALLEL_SIZE"] == int(gpu_count)
    (device,) = worker["deploy"]["resources"]["reservations"]["devices"]
    assert device["count"] == int(gpu_count) and device["capabilities"] == ["gpu"]
    assert worker["ipc"] == "host"
    assert "../../inference:/opt/shopdesk/inference:ro" in worker["volumes"]
    assert (COMPOSE_FILE.parent / "../../inference/__main__.py").resolve().is_file()


def test_a_second_replica_runs_the_same_worker_on_its_own_gpu_and_the_app_lists_both() -> None:
    """For a model that fits one GPU, two replicas (the second-replica profile) instead of TP=2."""
    from inference.client import model_worker_urls
    from tests.deploy.conftest import env_example_active

    both = "http://model-worker:8000/v1,http://model-worker-2:8000/v1"
    env = {**env_example_active(), "LLM_BASE_URL": both, "MODEL_WORKER_2_GPU": "1"}
    services = compose_resolved(env)["services"]
    first, second = services["model-worker"], services["model-worker-2"]
    assert second["profiles"] == ["second-replica"] and "profiles" not in first  # off unless asked for
    for key in ("image", "entrypoint", "command", "healthcheck", "ipc", "environment"):
        assert second[key] == first[key]
    # The same mounts, but a kernel cache of its own (two vLLMs compiling into one cache is not safe).
    kernels = "/root/.cache/kernels"
    assert [v for v in second["volumes"] if not v.endswith(kernels)] == [
        v for v in first["volumes"] if not v.endswith(kernels)
    ]
    assert f"kernel-cache:{kernels}" in first["volumes"] and f"kernel-cache-2:{kernels}" in second["volumes"]
    (device,) = second["deploy"]["resources"]["reservations"]["devices"]
    assert device["device_ids"] == ["1"] and "count" not in device
    for name in APP_SERVICES:
        assert model_worker_urls(services[name]["environment"]["LLM_BASE_URL"]) == both.split(",")
    # Without the setting, the app talks to the one model worker.
    default = compose_resolved()["services"]["web"]["environment"]["LLM_BASE_URL"]
    assert model_worker_urls(default) == ["http://model-worker:8000/v1"]


def test_env_example_profile_fits_its_gpu_count() -> None:
    from tests.deploy.conftest import env_example_active

    env = env_example_active()
    profile = profiles.load(env["MODEL_PROFILE"])
    assert profile.device == "gpu" and profile.deploy["nodes"] == 1
    assert int(env["GPU_COUNT"]) == profile.deploy["gpus_per_node"] == profile.engine.tensor_parallel_size


def test_app_image_build_context_is_the_repository() -> None:
    build = compose_resolved()["services"]["web"]["build"]
    assert (COMPOSE_FILE.parent / build["context"]).resolve() == BASE_DIR
    dockerfile = (BASE_DIR / build["dockerfile"]).read_text(encoding="utf-8")
    assert dockerfile.startswith("#") and "FROM python:3.11-slim" in dockerfile
    assert "USER 10001" in dockerfile and "collectstatic" in dockerfile
    assert "uvicorn_worker.UvicornWorker" in (DEPLOY / "docker" / "gunicorn.conf.py").read_text()


def test_nginx_streams_server_sent_events_and_hides_metrics() -> None:
    conf = (DEPLOY / "compose" / "nginx" / "shopdesk.conf.template").read_text(encoding="utf-8")
    blocks = {
        header.strip(): body
        for header, _, body in (part.partition("{") for part in conf.split("location ")[1:])
    }
    for location in (
        "~ ^/api/widget/conversations/[0-9]+/send/$",
        "= /v1/chat/completions",
        "/console/api/",
    ):
        body = blocks[location]
        assert "proxy_buffering off;" in body and "proxy_read_timeout" in body, location
    assert "return 404" in blocks["= /metrics"]
    assert "proxy_cache shopdesk_static" in blocks["/static/"]
    assert "proxy_cache shopdesk_static" in blocks["= /widget.js"]
    assert "ssl_certificate     /etc/nginx/tls/fullchain.pem" in conf


def _compose_plugin() -> bool:
    if shutil.which("docker") is None:
        return False
    return subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=30).returncode == 0


@pytest.mark.skipif(not _compose_plugin(), reason="no docker CLI with the compose plugin on this machine")
def test_docker_compose_config_accepts_the_file(tmp_path) -> None:  # pragma: no cover - needs docker
    env_file = tmp_path / ".env"
    env_file.write_text((DEPLOY / "compose" / ".env.example").read_text(encoding="utf-8"))
    result = subprocess.run(
        ["docker", "compose", "-f", str(COMPOSE_FILE), "--env-file", str(env_file), "config", "--quiet"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
