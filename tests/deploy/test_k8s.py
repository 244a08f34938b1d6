"""deploy/k8s: every manifest parses and validates; the model worker runs what the profiles say.

Core kinds (Deployment, Service, Job, StatefulSet, PodDisruptionBudget, NetworkPolicy, Ingress, ConfigMap,
PersistentVolumeClaim, Namespace) are validated strictly (unknown fields refused) against the Kubernetes
OpenAPI schemas that kubernetes-validate ships. Custom resources (KEDA ScaledObject, CloudNativePG Cluster,
LeaderWorkerSet, ServiceMonitor) are validated against the small hand-written schemas in crd_schemas/,
which check only the fields these manifests rely on; the operators' full CRDs are not vendored.
Not checked: that ``kustomize build`` renders (no kustomize here; the references are checked instead)."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml

from apps.core.metrics import celery_queue_names
from inference import profiles
from tests.deploy.conftest import K8S, k8s_documents

KUBERNETES_VERSION = "1.33.0"
CRD_SCHEMAS = Path(__file__).resolve().parent / "crd_schemas"
CUSTOM_KINDS = {
    "keda.sh/v1alpha1/ScaledObject",
    "postgresql.cnpg.io/v1/Cluster",
    "leaderworkerset.x-k8s.io/v1/LeaderWorkerSet",
    "monitoring.coreos.com/v1/ServiceMonitor",
}


def _key(document: dict) -> str:
    return f"{document['apiVersion']}/{document['kind']}"


def _documents_of(kind: str) -> list[tuple[Path, dict]]:
    return [(path, document) for path, document in k8s_documents() if document["kind"] == kind]


@pytest.mark.parametrize(
    ("path", "document"),
    [
        pytest.param(path, document, id=f"{path.relative_to(K8S)}:{document['kind']}")
        for path, document in k8s_documents()
    ],
)
def test_manifest_validates(path: Path, document: dict) -> None:
    if _key(document) in CUSTOM_KINDS:
        schema_file = CRD_SCHEMAS / (_key(document).replace("/", "_").replace(".", "-") + ".json")
        jsonschema.validate(document, json.loads(schema_file.read_text(encoding="utf-8")))
    else:
        kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)


def test_every_kind_is_validated_by_something() -> None:
    kinds = {_key(document) for _, document in k8s_documents()}
    assert CUSTOM_KINDS <= kinds
    assert {"apps/v1/Deployment", "batch/v1/Job", "policy/v1/PodDisruptionBudget"} <= kinds


def test_kustomizations_reference_files_that_exist() -> None:
    for kustomization in K8S.rglob("kustomization.yaml"):
        data = yaml.safe_load(kustomization.read_text(encoding="utf-8"))
        for resource in data["resources"]:
            target = kustomization.parent / resource
            assert target.is_file() or (target / "kustomization.yaml").is_file(), (
                f"{kustomization}: {resource}"
            )


def test_each_overlay_is_base_plus_one_model_worker_for_a_profile() -> None:
    overlays = sorted((K8S / "overlays").iterdir())
    assert {overlay.name for overlay in overlays} == {
        "qwen3-30b-a3b-fp8",
        "deepseek-v3-fp8",
        "deepseek-v3-fp8-2node",
    }
    for overlay in overlays:
        data = yaml.safe_load((overlay / "kustomization.yaml").read_text(encoding="utf-8"))
        assert data["resources"] == ["../../base", f"../../model-worker/{overlay.name}"]
        assert overlay.name in profiles.available()


def _model_worker_pods() -> list[tuple[str, dict, int]]:
    """(profile directory, pod spec, pods in one model replica) of each model-worker manifest."""
    pods = []
    for path, document in k8s_documents():
        profile = path.parent.name
        if document["kind"] == "Deployment" and document["metadata"]["name"] == "model-worker":
            pods.append((profile, document["spec"]["template"]["spec"], 1))
        elif document["kind"] == "LeaderWorkerSet":
            template = document["spec"]["leaderWorkerTemplate"]
            pods.append((profile, template["leaderTemplate"]["spec"], template["size"]))
            pods.append((profile, template["workerTemplate"]["spec"], template["size"]))
    return pods


def test_model_worker_manifests_follow_their_profile() -> None:
    """The image is the profile's [deploy] image; each pod asks for the profile's GPUs per node; the
    serving container runs our launcher with the profile, its TP size equal to the pod's GPUs; a group
    has as many pods as the profile has nodes."""
    seen = set()
    for directory, spec, group_size in _model_worker_pods():
        profile = profiles.load(directory)
        (container,) = spec["containers"]
        assert container["image"] == profile.deploy["image"]
        gpus = container["resources"]["limits"]["nvidia.com/gpu"]
        assert gpus == container["resources"]["requests"]["nvidia.com/gpu"] == profile.deploy["gpus_per_node"]
        assert group_size == profile.deploy["nodes"]
        command = " ".join(container.get("command", []) + container.get("args", []))
        if "inference serve" in command:
            seen.add(directory)
            assert f"--profile {profile.name} " in command
            env = {item["name"]: item.get("value") for item in container["env"]}
            assert int(env["TENSOR_PARALLEL_SIZE"]) == gpus == profile.engine.tensor_parallel_size
            assert (
                profile.engine.tensor_parallel_size * profile.engine.pipeline_parallel_size
                == gpus * profile.deploy["nodes"]
            )
            volumes = {volume["name"]: volume for volume in spec["volumes"]}
            assert volumes["dshm"]["emptyDir"]["medium"] == "Memory"
        else:
            assert "multi-node-serving.sh worker" in command
    assert seen == {"qwen3-30b-a3b-fp8", "deepseek-v3-fp8", "deepseek-v3-fp8-2node"}


def test_model_workers_keep_compiled_kernels_on_a_volume() -> None:
    """vLLM's cache root (torch.compile, DeepGEMM's kernels) and Triton's cache lie on a mounted volume,
    not in the container's own filesystem, which a restart throws away; on single-node pods that volume is
    the persistent weights claim, so a rescheduled pod keeps them too."""
    for directory, spec, group_size in _model_worker_pods():
        (container,) = spec["containers"]
        env = {item["name"]: item.get("value") for item in container["env"]}
        mounts = {mount["mountPath"]: mount["name"] for mount in container["volumeMounts"]}
        volumes = {volume["name"]: volume for volume in spec["volumes"]}
        for variable in ("VLLM_CACHE_ROOT", "TRITON_CACHE_DIR"):
            (mount,) = [path for path in mounts if env[variable].startswith(path + "/")]
            volume = volumes[mounts[mount]]
            assert not mounts[mount].startswith("shopdesk"), (directory, variable)
            if group_size == 1:
                assert "persistentVolumeClaim" in volume, (directory, variable)


def test_multi_node_profile_is_pipeline_parallel_over_ray() -> None:
    profile = profiles.load("deepseek-v3-fp8-2node")
    command = profiles.vllm_command(profile, model=profile.source["model"])
    assert command[command.index("--tensor-parallel-size") + 1] == "8"
    assert command[command.index("--pipeline-parallel-size") + 1] == "2"
    assert command[command.index("--distributed-executor-backend") + 1] == "ray"


def test_web_probes_and_budget() -> None:
    (_, web), *_ = [item for item in _documents_of("Deployment") if item[1]["metadata"]["name"] == "web"]
    container = web["spec"]["template"]["spec"]["containers"][0]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["resources"]["requests"] and container["resources"]["limits"]
    budgets = {document["metadata"]["name"] for _, document in _documents_of("PodDisruptionBudget")}
    assert "web" in budgets


def test_beat_is_a_single_replica_recreated() -> None:
    (_, beat), *_ = [
        item for item in _documents_of("Deployment") if item[1]["metadata"]["name"] == "celery-beat"
    ]
    assert beat["spec"]["replicas"] == 1 and beat["spec"]["strategy"]["type"] == "Recreate"


def test_celery_workers_scale_on_the_queues_celery_uses() -> None:
    ((_, scaled),) = _documents_of("ScaledObject")
    assert scaled["spec"]["scaleTargetRef"]["name"] == "celery-worker"
    lists = {
        trigger["metadata"]["listName"]
        for trigger in scaled["spec"]["triggers"]
        if trigger["type"] == "redis"
    }
    assert lists == set(celery_queue_names())


def test_postgres_cluster_has_pgvector() -> None:
    ((_, cluster),) = _documents_of("Cluster")
    sql = cluster["spec"]["bootstrap"]["initdb"]["postInitApplicationSQL"]
    assert any("CREATE EXTENSION" in line and "vector" in line for line in sql)


def test_only_web_and_celery_reach_the_model_worker_and_database() -> None:
    policies = {document["metadata"]["name"]: document for _, document in _documents_of("NetworkPolicy")}

    def pod_names(policy: dict, port: int) -> set[str]:
        names: set[str] = set()
        for rule in policy["spec"]["ingress"]:
            if not any(item.get("port") == port for item in rule.get("ports", [])):
                continue
            for peer in rule["from"]:
                selector = peer.get("podSelector")
                if selector:
                    for expression in selector.get("matchExpressions", []):
                        names.update(expression["values"])
                    names.update(selector.get("matchLabels", {}).values())
        return names

    assert pod_names(policies["model-worker"], 8000) == {"web", "celery-worker"}
    assert pod_names(policies["postgres"], 5432) == {"web", "celery-worker", "celery-beat", "migrate"}


def test_ingress_streams_server_sent_events() -> None:
    ((_, ingress),) = _documents_of("Ingress")
    annotations = ingress["metadata"]["annotations"]
    assert annotations["nginx.ingress.kubernetes.io/proxy-buffering"] == "off"
    assert int(annotations["nginx.ingress.kubernetes.io/proxy-read-timeout"]) >= 300
    assert ingress["spec"]["tls"][0]["secretName"]


def test_secrets_are_referenced_never_inlined() -> None:
    assert not _documents_of("Secret")
    text = "\n".join(path.read_text(encoding="utf-8") for path in K8S.rglob("*.yaml"))
    for marker in ("stringData", "password:", "token:"):
        assert marker not in text
