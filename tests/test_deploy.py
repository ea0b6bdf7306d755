"""The host's deployment files (fast tier): the Kubernetes manifests are valid objects of the
Kubernetes API (strict: no unknown field), every ``mailbot`` command they, compose.yaml and the
Dockerfile run is one the command line takes, secrets come from Secrets, and the image runs as an
unprivileged user with no compiler. Building the image itself needs a Docker engine, which
this machine has not; the closing notes say so."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from mailbot.cli import build_parser

REPO = Path(__file__).resolve().parents[1]
MANIFEST = REPO / "deploy" / "k8s" / "mailbot.yaml"


def _parses(argv: list[str]) -> None:
    try:
        build_parser().parse_args(argv)
    except SystemExit as exc:            # argparse's way of refusing
        raise AssertionError(f"mailbot does not take: {' '.join(argv)}") from exc


def _documents() -> list[dict]:
    return [d for d in yaml.safe_load_all(MANIFEST.read_text(encoding="utf-8")) if d]


def test_the_kubernetes_manifests_are_valid_api_objects():
    validate = pytest.importorskip("kubernetes_validate", reason="kubernetes-validate is a test extra")
    for doc in _documents():
        for version in ("1.29.0", "1.33.0"):
            validate.validate(doc, version, strict=True)       # raises on any error


def test_every_mailbot_command_in_the_deployment_files_is_one_mailbot_takes():
    commands: list[list[str]] = []
    for doc in _documents():
        spec = doc.get("spec", {})
        pod = spec.get("template", {}).get("spec") or \
            spec.get("jobTemplate", {}).get("spec", {}).get("template", {}).get("spec") or {}
        for c in pod.get("containers", []):
            if str(c.get("image", "")).startswith("mailbot"):
                commands.append(c["args"])
                assert pod["securityContext"]["runAsNonRoot"] is True
                for env in c.get("env", []):              # credentials from Secrets, never inline
                    if env["name"] in ("MAILBOT_DATABASE_URL", "MAILBOT_HOST_SECRET"):
                        assert "secretKeyRef" in env["valueFrom"], env
    compose = yaml.safe_load((REPO / "compose.yaml").read_text(encoding="utf-8"))
    for name, service in compose["services"].items():
        if service.get("image") == "mailbot":
            commands.append(service["command"])
    dockerfile = (REPO / "Dockerfile").read_text(encoding="utf-8")
    commands.append(json.loads(re.search(r"^CMD (\[.*\])$", dockerfile, re.M).group(1)))  # type: ignore[union-attr]
    assert len(commands) >= 5
    for argv in commands:
        _parses(argv)
    # and the commands the comments tell a host to run
    for line in re.findall(r"docker compose run --rm (?:-e \S+ )?worker (.+)", (REPO / "compose.yaml").read_text()):
        _parses(line.split("#")[0].split())


def test_the_image_runs_unprivileged_with_no_compiler():
    stages = re.split(r"^FROM ", (REPO / "Dockerfile").read_text(encoding="utf-8"), flags=re.M)[1:]
    assert len(stages) == 2
    final = stages[-1]
    assert "build-essential" not in final and "gcc" not in final
    user = re.search(r"^USER (\S+)", final, re.M)
    assert user is not None and user.group(1) not in ("root", "0")
    assert "--no-index" in final                  # only the wheels the first stage built
