"""docker/Dockerfile and its scripts: one install step shared with the Makefile, non-root, no secrets.

No Docker engine runs here, so the image is not built; what is checked is what the build would do: the
Dockerfile's instructions as text, the Makefile recipe its `make venv` runs (by `make -n`), and the S3A jar
installer run for real against a Maven repository laid out on disk (curl reads file:// URLs as it reads
https:// ones). The entry point's roles are checked against the compose file in test_compose.py.
"""

from __future__ import annotations

import hashlib
import importlib.util
import re
import shlex
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
DOCKERFILE = DOCKER / "Dockerfile"
SECRET_WORDS = ("PASSWORD", "SECRET", "TOKEN", "ACCESS_KEY")


def instructions(path: Path = DOCKERFILE) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    joined = re.sub(r"\\\n", " ", path.read_text())
    parsed = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            parsed.append((keyword.upper(), rest.strip()))
    return parsed


def runs() -> list[str]:
    return [args for keyword, args in instructions() if keyword == "RUN"]


def make_dry_run(*args: str) -> list[str]:
    """The commands `make venv` would execute for a venv that does not exist yet."""
    result = subprocess.run(["make", "-n", "-B", "venv", *args], cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


# ------------------------------------------------------------------------------------------ install step


def test_the_image_installs_through_the_makefiles_venv_target_and_nothing_else() -> None:
    installs = [run for run in runs() if re.search(r"\bmake\b.*\bvenv\b", run)]
    others = [run for run in runs() if re.search(r"pip install|uv (sync|pip)|poetry|requirements", run)]

    assert len(installs) == 1, installs
    assert others == []


def test_the_image_and_a_developer_run_the_same_uv_sync_from_the_lock_differing_only_in_the_dev_extra() -> None:
    (install,) = [run for run in runs() if re.search(r"\bmake\b.*\bvenv\b", run)]
    image_args = shlex.split(install)[2:]  # after "make venv"

    image = make_dry_run(*image_args)
    developer = make_dry_run()

    syncs = [line for line in image if " sync " in line]
    assert len(syncs) == 1 and "--frozen" in syncs[0], image  # frozen: exactly uv.lock, never re-resolved
    assert "--extra" not in syncs[0]
    assert [line.replace(" --extra dev", "") for line in developer] == [re.sub(r"\s+", " ", line) for line in image]


def test_the_lock_and_the_project_are_copied_before_the_install() -> None:
    steps = instructions()
    install = next(i for i, (k, a) in enumerate(steps) if k == "RUN" and "make venv" in a)
    copied = " ".join(a for k, a in steps[:install] if k == "COPY")
    assert all(name in copied for name in ("Makefile", "pyproject.toml", "uv.lock", "k2_lakehouse", "sql"))


# ------------------------------------------------------------------------------------------ runtime


def test_the_image_runs_as_a_non_root_user() -> None:
    users = [args for keyword, args in instructions() if keyword == "USER"]
    assert users and users[-1] not in {"root", "0"}
    assert any("useradd" in run and users[-1] in run for run in runs())


def test_the_image_has_a_healthcheck_and_the_entrypoint() -> None:
    steps = dict(instructions())
    assert "healthcheck.sh" in steps["HEALTHCHECK"]
    assert "entrypoint.sh" in steps["ENTRYPOINT"]


def test_no_secret_is_baked_into_the_image() -> None:
    for keyword, args in instructions():
        if keyword in {"ENV", "ARG"}:
            names = re.findall(r"([A-Z_][A-Z0-9_]*)=", args) or [args.split("=")[0]]
            assert not any(word in name for name in names for word in SECRET_WORDS), (keyword, args)
    ignored = (DOCKER / "Dockerfile.dockerignore").read_text().splitlines()
    assert "docker/.env" in ignored  # COPY docker ./docker must never pick up the filled-in environment


@pytest.mark.parametrize("script", ["entrypoint.sh", "healthcheck.sh", "install-s3a-jars.sh"])
def test_the_scripts_parse_and_are_executable(script: str) -> None:
    path = DOCKER / script
    assert path.stat().st_mode & 0o111
    result = subprocess.run(["sh", "-n", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


# ------------------------------------------------------------------------------------------ S3A jars


def publish(repo: Path, group: str, artifact: str, version: str, content: bytes, sha1: str | None = None) -> None:
    folder = repo / group / artifact / version
    folder.mkdir(parents=True)
    (folder / f"{artifact}-{version}.jar").write_bytes(content)
    (folder / f"{artifact}-{version}.jar.sha1").write_text(sha1 or hashlib.sha1(content).hexdigest())


@pytest.fixture
def maven(tmp_path: Path) -> tuple[Path, Path]:
    """A Spark home shipping Hadoop 3.9.1, and a repository whose hadoop-project 3.9.1 names SDK 2.77.7."""
    spark_home = tmp_path / "spark"
    (spark_home / "jars").mkdir(parents=True)
    (spark_home / "jars" / "hadoop-client-api-3.9.1.jar").write_bytes(b"api")
    repo = tmp_path / "repo"
    project = repo / "org/apache/hadoop/hadoop-project/3.9.1"
    project.mkdir(parents=True)
    (project / "hadoop-project-3.9.1.pom").write_text(
        "<project><properties>\n  <aws-java-sdk.version>1.12.720</aws-java-sdk.version>\n"
        "  <aws-java-sdk-v2.version>2.77.7</aws-java-sdk-v2.version>\n</properties></project>\n")
    publish(repo, "org/apache/hadoop", "hadoop-aws", "3.9.1", b"hadoop-aws")
    publish(repo, "org/apache/hadoop", "hadoop-aws", "3.9.2", b"hadoop-aws newer")
    return spark_home, repo


def install_s3a_jars(spark_home: Path, repo: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(DOCKER / "install-s3a-jars.sh"), str(spark_home)], capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "MAVEN_REPOSITORY": f"file://{repo}"}, timeout=60)


def test_s3a_jars_match_the_hadoop_spark_ships_and_the_sdk_that_hadoop_release_names(maven: tuple[Path, Path]) -> None:
    spark_home, repo = maven
    publish(repo, "software/amazon/awssdk", "bundle", "2.77.7", b"sdk bundle")

    result = install_s3a_jars(spark_home, repo)

    assert result.returncode == 0, result.stderr
    jars = {p.name: p.read_bytes() for p in (spark_home / "jars").iterdir()}
    assert jars["hadoop-aws-3.9.1.jar"] == b"hadoop-aws"
    assert jars["bundle-2.77.7.jar"] == b"sdk bundle"
    assert "hadoop-aws-3.9.2.jar" not in jars


def test_a_jar_whose_checksum_differs_is_refused_and_removed(maven: tuple[Path, Path]) -> None:
    spark_home, repo = maven
    publish(repo, "software/amazon/awssdk", "bundle", "2.77.7", b"tampered", sha1="0" * 40)

    result = install_s3a_jars(spark_home, repo)

    assert result.returncode != 0
    assert "bundle-2.77.7.jar has SHA-1" in result.stderr
    assert not (spark_home / "jars" / "bundle-2.77.7.jar").exists()


def test_pyspark_ships_one_hadoop_client_for_the_installer_to_match() -> None:
    spec = importlib.util.find_spec("pyspark")
    assert spec is not None and spec.submodule_search_locations
    jars = sorted((Path(spec.submodule_search_locations[0]) / "jars").glob("hadoop-client-api-*.jar"))
    assert len(jars) == 1, jars


def test_the_directories_the_processes_write_belong_to_the_image_user() -> None:
    user = [args for keyword, args in instructions() if keyword == "USER"][-1]
    env = " ".join(args for keyword, args in instructions() if keyword == "ENV")
    k2_home = re.search(r"K2_HOME=(\S+)", env)
    artifacts = yaml.safe_load((DOCKER / "dagster" / "dagster.yaml").read_text())["local_artifact_storage"]
    assert k2_home is not None
    owned = [run for run in runs() if f"chown {user}:{user}" in run]
    assert owned and all(path in owned[0] for path in (k2_home[1], artifacts["config"]["base_dir"]))
