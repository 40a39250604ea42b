"""docker/k8s: every manifest valid Kubernetes, the Helm values valid for dagster-k8s, no secret in the values.

No cluster exists here (kubectl has nothing to talk to), so:

* every manifest, and the Pod and Job the chart builds from the values' Kubernetes blocks (image, resources,
  security contexts, envFrom), is validated strictly against the Kubernetes OpenAPI schemas that
  `kubernetes-validate` bundles;
* the run launcher section of the dagster.yaml the chart renders from these values (a transcription of the
  chart's `dagsterYaml.runLauncher.k8s` template, helm/dagster/templates/helpers/instance/_run-launcher.tpl)
  is checked against `K8sRunLauncher.config_type()` and then built by Dagster into a real K8sRunLauncher;
* the daemon settings the chart renders (queue, run monitoring, retries) are loaded into a real instance;
* the k8s executor that the ConfigMap's variables select is resolved through dagster-k8s's executor schema.
"""

from __future__ import annotations

import runpy
from pathlib import Path

import dagster as dg
import kubernetes_validate
import pytest
import yaml
from dagster._config import process_config  # dagster publishes no validator for an instance class's config
from dagster_k8s import K8sRunLauncher

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "docker" / "k8s"
KUBERNETES_VERSION = "1.31"
RELEASE, NAMESPACE = "k2", "k2"
SECRET_WORDS = ("PASSWORD", "SECRET", "TOKEN", "ACCESS_KEY", "URL", "URI")


def documents(name: str) -> list[dict]:
    return list(yaml.safe_load_all((K8S / name).read_text()))


def manifests() -> list[tuple[str, dict]]:
    return [(f"{name}:{doc['kind']}/{doc['metadata']['name']}", doc)
            for name in ("configmap.yaml", "secret.example.yaml") for doc in documents(name)]


@pytest.fixture(scope="module")
def values() -> dict:
    return yaml.safe_load((K8S / "values.yaml").read_text())


def user_deployment(values: dict) -> dict:
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    return deployment


def launcher_values(values: dict) -> dict:
    return values["runLauncher"]["config"]["k8sRunLauncher"]


def validate(resource: dict) -> None:
    kubernetes_validate.validate(resource, KUBERNETES_VERSION, strict=True)


def env_from(config_maps: list[dict], secrets: list[dict]) -> list[dict]:
    return [{"configMapRef": {"name": c["name"]}} for c in config_maps] + [{"secretRef": {"name": s["name"]}}
                                                                           for s in secrets]


def image_name(image: dict) -> str:
    return f"{image['repository']}:{image['tag']}"


# ------------------------------------------------------------------------------------------ manifests


@pytest.mark.parametrize(("name", "manifest"), manifests(), ids=[name for name, _ in manifests()])
def test_every_manifest_is_valid_kubernetes(name: str, manifest: dict) -> None:
    validate(manifest)


def test_the_code_servers_pod_as_the_chart_builds_it_is_valid_kubernetes(values: dict) -> None:
    deployment = user_deployment(values)
    pod = {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": deployment["name"], "labels": deployment["labels"]},
        "spec": {
            "securityContext": deployment["podSecurityContext"],
            "containers": [{
                "name": deployment["name"], "image": image_name(deployment["image"]),
                "imagePullPolicy": deployment["image"]["pullPolicy"],
                "args": ["dagster", "api", "grpc", "-h", "0.0.0.0", "-p", str(deployment["port"]),
                         *deployment["dagsterApiGrpcArgs"]],
                "ports": [{"name": "grpc", "containerPort": deployment["port"]}],
                "envFrom": env_from(deployment["envConfigMaps"], deployment["envSecrets"]),
                "securityContext": deployment["securityContext"],
                "resources": deployment["resources"],
            }],
        },
    }
    validate(pod)


def test_a_run_job_as_the_launcher_builds_it_is_valid_kubernetes(values: dict) -> None:
    launcher = launcher_values(values)
    job = {
        "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "dagster-run-0123", "labels": launcher["labels"]},
        "spec": {"backoffLimit": 0, "template": {"spec": {"restartPolicy": "Never", "containers": [{
            "name": "dagster", "image": image_name(user_deployment(values)["image"]),
            "imagePullPolicy": launcher["imagePullPolicy"],
            "args": ["dagster", "api", "execute_run", "{}"],
            "envFrom": env_from(launcher["envConfigMaps"], launcher["envSecrets"]),
            "resources": launcher["resources"],
        }]}}},
    }
    validate(job)


def test_a_misspelt_field_fails_strict_validation(values: dict) -> None:
    """The schema check can fail: the run's Job with `limit` for `limits` is rejected."""
    job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "bad"},
           "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [
               {"name": "dagster", "image": "k2", "resources": {"limit": launcher_values(values)["resources"]["limits"]}},
           ]}}}}
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(job)


# ------------------------------------------------------------------------------------------ secrets


def test_the_values_set_no_environment_variable_literally(values: dict) -> None:
    def literal_env(node: object, path: str) -> list[str]:
        if isinstance(node, dict):
            found = [f"{path}.{k}" for k, v in node.items() if k in {"env", "envVars"} and v]
            return found + [p for k, v in node.items() for p in literal_env(v, f"{path}.{k}")]
        if isinstance(node, list):
            return [p for i, v in enumerate(node) for p in literal_env(v, f"{path}[{i}]")]
        return []

    assert literal_env(values, "values") == []


def test_every_secret_and_config_map_the_values_name_is_a_manifest_here(values: dict) -> None:
    defined = {(doc["kind"], doc["metadata"]["name"]) for _, doc in manifests()}
    deployment, launcher = user_deployment(values), launcher_values(values)
    named = {("ConfigMap", c["name"]) for c in deployment["envConfigMaps"] + launcher["envConfigMaps"]}
    named |= {("Secret", s["name"]) for s in deployment["envSecrets"] + launcher["envSecrets"]}
    named.add(("Secret", values["global"]["postgresqlSecretName"]))
    assert named <= defined


def test_dagsters_postgresql_password_comes_only_from_its_secret(values: dict) -> None:
    assert values["generatePostgresqlPasswordSecret"] is False
    assert values["postgresql"]["enabled"] is False
    assert values["postgresql"]["postgresqlPassword"] == ""
    (secret,) = [d for _, d in manifests() if d["metadata"]["name"] == values["global"]["postgresqlSecretName"]]
    assert set(secret["stringData"]) == {"postgresql-password"}  # the key the chart reads


def test_the_config_map_holds_no_credential() -> None:
    (config_map,) = documents("configmap.yaml")
    assert not [k for k in config_map["data"] if any(word in k for word in SECRET_WORDS[:4])]
    assert not [v for v in config_map["data"].values() if "@" in str(v)]  # no user:password@host


def test_the_secret_template_holds_only_placeholders() -> None:
    for doc in documents("secret.example.yaml"):
        for key, value in doc["stringData"].items():
            assert value == "" or "change-me" in value, key


# ------------------------------------------------------------------------------------------ dagster-k8s


def rendered_run_launcher(values: dict) -> dict:
    """The run_launcher section the chart writes into its instance ConfigMap for these values."""
    launcher = launcher_values(values)
    config: dict[str, object] = {
        "load_incluster_config": launcher["loadInclusterConfig"],
        "job_namespace": launcher.get("jobNamespace") or NAMESPACE,
        "image_pull_policy": launcher["imagePullPolicy"],
        "service_account_name": f"{RELEASE}-dagster",
        "dagster_home": values["global"]["dagsterHome"],
        "instance_config_map": f"{RELEASE}-dagster-instance",
        "postgres_password_secret": values["global"]["postgresqlSecretName"],
    }
    if launcher.get("envConfigMaps"):
        config["env_config_maps"] = [c["name"] for c in launcher["envConfigMaps"]]
    if launcher.get("envSecrets"):
        config["env_secrets"] = [s["name"] for s in launcher["envSecrets"]]
    for key, name in (("labels", "labels"), ("resources", "resources"), ("securityContext", "security_context")):
        if launcher.get(key):
            config[name] = launcher[key]
    if launcher.get("failPodOnRunFailure"):
        config["fail_pod_on_run_failure"] = True
    return {"module": "dagster_k8s", "class": "K8sRunLauncher", "config": config}


def test_the_run_launcher_config_validates_against_dagster_k8s_schema(values: dict) -> None:
    result = process_config(K8sRunLauncher.config_type(), rendered_run_launcher(values)["config"])
    assert result.success, [e.message for e in result.errors]


def test_a_run_launcher_key_dagster_k8s_does_not_know_fails_its_schema(values: dict) -> None:
    config = {**rendered_run_launcher(values)["config"], "run_resources": {}}
    assert not process_config(K8sRunLauncher.config_type(), config).success


def test_dagster_builds_a_k8s_run_launcher_giving_each_run_the_values_resources(values: dict, tmp_path: Path) -> None:
    # Outside a cluster the launcher cannot load in-cluster credentials: point it at a kubeconfig instead.
    # Nothing is contacted; the launcher only reads the file.
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "k2",
        "clusters": [{"name": "k2", "cluster": {"server": "https://127.0.0.1:6443"}}],
        "contexts": [{"name": "k2", "context": {"cluster": "k2", "user": "k2"}}],
        "users": [{"name": "k2", "user": {"token": "unused"}}],
    }))
    run_launcher = rendered_run_launcher(values)
    run_launcher["config"] = {**run_launcher["config"], "load_incluster_config": False, "kubeconfig_file": str(kubeconfig)}

    with dg.instance_for_test(overrides={"run_launcher": run_launcher}) as instance:
        launcher = instance.run_launcher

    assert isinstance(launcher, K8sRunLauncher)
    assert launcher.resources == launcher_values(values)["resources"]
    assert launcher.env_secrets == ["k2-credentials"]
    assert launcher.env_config_maps == ["k2-connection"]


def test_the_daemon_settings_the_chart_renders_make_a_valid_instance(values: dict) -> None:
    daemon = values["dagsterDaemon"]
    queued = daemon["runCoordinator"]["config"]["queuedRunCoordinator"]
    overrides = {
        "run_coordinator": {"module": "dagster.core.run_coordinator", "class": "QueuedRunCoordinator",
                            "config": {"max_concurrent_runs": queued["maxConcurrentRuns"]}},
        "run_monitoring": {"enabled": daemon["runMonitoring"]["enabled"],
                           "start_timeout_seconds": daemon["runMonitoring"]["startTimeoutSeconds"],
                           "poll_interval_seconds": daemon["runMonitoring"]["pollIntervalSeconds"]},
        "run_retries": {"enabled": daemon["runRetries"]["enabled"], "max_retries": daemon["runRetries"]["maxRetries"]},
    }

    with dg.instance_for_test(overrides=overrides) as instance:
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
        assert instance.run_monitoring_enabled and instance.run_retries_enabled
        assert instance.get_concurrency_config().run_queue_config.max_concurrent_runs == queued["maxConcurrentRuns"]


def test_the_code_server_loads_the_code_location_the_project_declares(values: dict) -> None:
    args = user_deployment(values)["dagsterApiGrpcArgs"]
    assert args[args.index("--module-name") + 1] == "k2_lakehouse.definitions"  # pyproject's [tool.dagster]
    assert user_deployment(values)["includeConfigInLaunchedRuns"] == {"enabled": True}


def test_the_config_maps_step_resources_make_a_valid_k8s_executor(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (config_map,) = documents("configmap.yaml")
    for name, value in config_map["data"].items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("K2_HOME", str(tmp_path))
    monkeypatch.setenv("K2_CLICKHOUSE_URL", "https://k2:unused@clickhouse.k2.svc.cluster.local:8443")
    assert config_map["data"]["K2_ICEBERG_WAREHOUSE"].startswith("s3://"), "a server needs object storage"
    monkeypatch.setenv("K2_RUN_EXECUTOR", "k8s")

    defs = runpy.run_module("k2_lakehouse.definitions", run_name="k2_definitions_under_test")["defs"]
    execution = dg.validate_run_config(defs.resolve_job_def("offload_job"), {})["execution"]

    resources = execution["k8s"]["step_k8s_config"]["container_config"]["resources"]
    assert resources == {
        "requests": {"cpu": config_map["data"]["K2_K8S_STEP_CPU_REQUEST"],
                     "memory": config_map["data"]["K2_K8S_STEP_MEMORY_REQUEST"]},
        "limits": {"cpu": config_map["data"]["K2_K8S_STEP_CPU_LIMIT"],
                   "memory": config_map["data"]["K2_K8S_STEP_MEMORY_LIMIT"]},
    }
