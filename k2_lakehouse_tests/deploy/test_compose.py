"""docker/compose.yaml: accepted by docker-compose, every service bounded and checked, wired as the README says.

No Docker engine runs here, so the stack is validated rather than started: Debian's `docker-compose` (1.29,
installed by `make compose`) parses and interpolates the file exactly as it would before `up`, and the tests
read its resolved output. The budgets are the plan's, written out here, not taken from the file.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker" / "compose.yaml"
ENV_EXAMPLE = ROOT / "docker" / ".env.example"
README = ROOT / "README.md"
K8S = ROOT / "docker" / "k8s"

# The plan's budgets: the whole stack ~17.5 CPU / ~20 GB.
STACK_CPUS, STACK_MEMORY_GB = 17.5, 20.0
# Stateful services and where their state lives inside the container.
STATE = {
    "clickhouse": "/var/lib/clickhouse",
    "minio": "/data",
    "postgres": "/var/lib/postgresql/data",
    "code-server": "/var/lib/dagster",
    "webserver": "/var/lib/dagster",
    "daemon": "/var/lib/dagster",
}
ONE_SHOT = {"minio-init", "init"}
VARIABLE = re.compile(r"^(K2|AWS)_[A-Z0-9_]+$")
MEMORY = re.compile(r"^(\d+(?:\.\d+)?)([KMG])$")


def compose_config(env_file: Path | None = ENV_EXAMPLE) -> subprocess.CompletedProcess[str]:
    docker_compose = shutil.which("docker-compose")
    if docker_compose is None:
        pytest.fail("docker-compose is missing: `make compose` installs Debian's package")
    args = [docker_compose, "-f", str(COMPOSE)]
    if env_file is not None:
        args += ["--env-file", str(env_file)]
    return subprocess.run([*args, "config"], capture_output=True, text=True, timeout=60, cwd=ROOT)


@pytest.fixture(scope="module")
def resolved() -> dict[str, dict[str, object]]:
    """The compose file as docker-compose resolves it with docker/.env.example."""
    result = compose_config()
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def readme_variables() -> set[str]:
    """K2_*/AWS_* names in the first column of the README's Configuration table."""
    section = README.read_text().split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    names: set[str] = set()
    for line in section.splitlines():
        if line.startswith("| `"):
            first_column = line.split("|")[1]
            names |= {n for n in re.findall(r"`([^`]+)`", first_column) if VARIABLE.match(n)}
    return names


def compose_variables(resolved: dict[str, dict[str, object]]) -> set[str]:
    names: set[str] = set()
    for service in resolved["services"].values():
        names |= {n for n in service.get("environment", {}) if VARIABLE.match(n)}  # type: ignore[union-attr]
    return names


def kubernetes_variables() -> set[str]:
    """Keys of the ConfigMap and Secrets that docker/k8s/values.yaml hands to the code server and runs."""
    names: set[str] = set()
    for path in (K8S / "configmap.yaml", K8S / "secret.example.yaml"):
        for doc in yaml.safe_load_all(path.read_text()):
            names |= {n for n in {**doc.get("data", {}), **doc.get("stringData", {})} if VARIABLE.match(n)}
    return names


def code_variables() -> set[str]:
    """K2_*/AWS_* names the product's code and the image's scripts read."""
    names: set[str] = set()
    sources = [*(ROOT / "k2_lakehouse").rglob("*.py"), *(ROOT / "docker").glob("*.sh")]
    for path in sources:
        names |= set(re.findall(r"\b((?:K2|AWS)_[A-Z0-9_]+)\b", path.read_text()))
    # K2_TEST_*: fault-injection hooks of the test suite, not configuration; a name ending in _ is a prefix
    # in prose ("K2_K8S_STEP_{CPU,MEMORY}_...").
    return {n for n in names if VARIABLE.match(n) and not n.startswith("K2_TEST_") and not n.endswith("_")}


def gigabytes(memory: str) -> float:
    match = MEMORY.match(str(memory))
    assert match, f"memory limit {memory!r} is not of the form 512M / 2G"
    return float(match[1]) * {"K": 1 / 1024**2, "M": 1 / 1024, "G": 1}[match[2]]


# ------------------------------------------------------------------------------------------ validity


def test_docker_compose_accepts_the_file_with_the_example_environment() -> None:
    result = compose_config()
    assert result.returncode == 0, result.stderr


def test_a_missing_password_is_refused_naming_the_variable_and_the_env_file() -> None:
    result = compose_config(env_file=None)

    assert result.returncode != 0
    assert "PASSWORD in docker/.env" in result.stderr


def test_the_example_environment_holds_no_real_secret() -> None:
    values = dict(line.split("=", 1) for line in ENV_EXAMPLE.read_text().splitlines() if "=" in line and not line.startswith("#"))
    secrets = {k: v for k, v in values.items() if k.endswith(("PASSWORD", "SECRET_ACCESS_KEY"))}
    assert secrets and all(v.startswith("change-me") for v in secrets.values()), secrets


def test_every_image_is_pinned_to_a_version(resolved: dict[str, dict[str, dict[str, str]]]) -> None:
    images = {name: service["image"] for name, service in resolved["services"].items()}
    assert all(":" in image and not image.endswith((":latest", ":26")) for image in images.values()), images
    assert images["clickhouse"].startswith("clickhouse/clickhouse-server:26.")


# ------------------------------------------------------------------------------------------ the stack


def test_the_stack_holds_every_service_of_the_platform(resolved: dict[str, dict[str, object]]) -> None:
    assert set(resolved["services"]) == {
        "clickhouse", "minio", "minio-init", "postgres", "init", "code-server", "webserver", "daemon",
        "spark-master", "spark-worker",
    }


def test_the_ui_is_published_on_port_3000(resolved: dict[str, dict[str, dict[str, list[dict[str, int]]]]]) -> None:
    assert {"published": 3000, "target": 3000} in resolved["services"]["webserver"]["ports"]


def test_every_service_has_cpu_and_memory_limits(resolved: dict[str, dict[str, dict[str, dict]]]) -> None:
    missing = [name for name, service in resolved["services"].items()
               if not {"cpus", "memory"} <= set(service.get("deploy", {}).get("resources", {}).get("limits", {}))]
    assert missing == []


def test_the_limits_add_up_to_the_plans_budget_for_the_whole_stack(
    resolved: dict[str, dict[str, dict[str, dict]]],
) -> None:
    limits = [service["deploy"]["resources"]["limits"] for service in resolved["services"].values()]

    cpus = sum(float(limit["cpus"]) for limit in limits)
    memory = sum(gigabytes(limit["memory"]) for limit in limits)

    assert cpus <= STACK_CPUS, f"{cpus} CPUs"
    assert memory <= STACK_MEMORY_GB, f"{memory:.2f} GB"


def test_every_long_running_service_has_a_healthcheck(resolved: dict[str, dict[str, dict[str, object]]]) -> None:
    unchecked = [name for name, service in resolved["services"].items()
                 if name not in ONE_SHOT and "test" not in service.get("healthcheck", {})]  # type: ignore[operator]
    assert unchecked == []


def test_every_dependency_waits_for_health_or_for_a_one_shot_to_succeed(
    resolved: dict[str, dict[str, dict[str, dict[str, dict[str, str]]]]],
) -> None:
    services = resolved["services"]
    for name, service in services.items():
        for dependency, condition in service.get("depends_on", {}).items():
            expected = "service_completed_successfully" if dependency in ONE_SHOT else "service_healthy"
            assert condition == {"condition": expected}, (name, dependency, condition)
    assert services["code-server"]["depends_on"].keys() >= {"init", "minio-init", "postgres", "clickhouse"}
    assert services["webserver"]["depends_on"].keys() >= {"code-server", "postgres"}
    assert services["daemon"]["depends_on"].keys() >= {"code-server", "postgres"}
    assert services["spark-worker"]["depends_on"].keys() == {"spark-master"}


def test_one_shot_jobs_are_never_restarted(resolved: dict[str, dict[str, dict[str, str]]]) -> None:
    assert {name: resolved["services"][name].get("restart") for name in ONE_SHOT} == dict.fromkeys(ONE_SHOT, "no")


@pytest.mark.parametrize("service", sorted(STATE))
def test_every_stateful_service_keeps_its_state_in_a_named_volume(
    resolved: dict[str, dict[str, dict[str, list[str]]]], service: str
) -> None:
    mounts = {v.split(":")[1]: v.split(":")[0] for v in resolved["services"][service]["volumes"]}
    assert mounts.get(STATE[service]) in resolved["volumes"], mounts


def test_the_webserver_daemon_and_code_server_share_one_dagster_storage_volume(
    resolved: dict[str, dict[str, dict[str, list[str]]]],
) -> None:
    volumes = {name: {v.split(":")[0] for v in resolved["services"][name]["volumes"]}
               for name in ("code-server", "webserver", "daemon")}
    assert set.intersection(*volumes.values()) == {"dagster-storage"}


def test_the_k2_processes_share_one_dagster_instance_database(
    resolved: dict[str, dict[str, dict[str, dict[str, str]]]],
) -> None:
    urls = {resolved["services"][name]["environment"]["K2_DAGSTER_POSTGRES_URL"]
            for name in ("code-server", "webserver", "daemon")}
    assert len(urls) == 1
    assert urls.pop().endswith("@postgres:5432/dagster")


# ------------------------------------------------------------------------------------------ variables


def test_every_variable_set_in_compose_is_in_the_readme_table(resolved: dict[str, dict[str, object]]) -> None:
    assert compose_variables(resolved) - readme_variables() == set()


def test_every_variable_in_the_readme_table_is_wired_in_compose_or_on_kubernetes(
    resolved: dict[str, dict[str, object]],
) -> None:
    assert readme_variables() - compose_variables(resolved) - kubernetes_variables() == set()


def test_every_variable_set_on_kubernetes_is_in_the_readme_table() -> None:
    assert kubernetes_variables() - readme_variables() == set()


def test_every_variable_the_code_reads_is_in_the_readme_table() -> None:
    assert code_variables() - readme_variables() == set()


def test_the_code_server_gets_every_variable_the_code_reads(
    resolved: dict[str, dict[str, dict[str, dict[str, str]]]],
) -> None:
    code_server = set(resolved["services"]["code-server"]["environment"])
    assert code_variables() - code_server - {"K2_K8S_STEP_CPU_REQUEST", "K2_K8S_STEP_MEMORY_REQUEST",
                                             "K2_K8S_STEP_CPU_LIMIT", "K2_K8S_STEP_MEMORY_LIMIT"} == set()


# ------------------------------------------------------------------------------------------ the image's roles


def raw_services() -> dict[str, dict[str, object]]:
    """The services as written (roles and healthcheck commands need no interpolation)."""
    return yaml.safe_load(COMPOSE.read_text())["services"]


def roles(script: Path) -> set[str]:
    """The roles a role-dispatching shell script's case statement handles."""
    return set(re.findall(r"^\s+([a-z][a-z-]*)\)", script.read_text(), re.MULTILINE))


def test_every_role_compose_starts_the_image_in_is_handled_by_the_entrypoint() -> None:
    started = {s["command"][0] for s in raw_services().values()  # type: ignore[index]
               if str(s.get("image", "")).startswith("${K2_IMAGE")}
    assert started == {"init", "code-server", "webserver", "daemon", "spark-master", "spark-worker"}
    assert started <= roles(ROOT / "docker" / "entrypoint.sh")


def test_every_role_compose_checks_is_handled_by_the_healthcheck() -> None:
    checked = {s["healthcheck"]["test"][2] for s in raw_services().values()  # type: ignore[index]
               if "healthcheck.sh" in str(s.get("healthcheck", {}))}
    assert checked == {"code-server", "webserver", "daemon", "spark-master", "spark-worker"}
    assert checked <= roles(ROOT / "docker" / "healthcheck.sh")
