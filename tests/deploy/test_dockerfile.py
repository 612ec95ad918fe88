"""deploy/Dockerfile, read instruction by instruction (no Docker engine is needed)."""
from __future__ import annotations

import json
import re
import shlex

from daemon.settings import MetricsSettings

from .helpers import DEPLOY, DOCKERFILE, ROOT, check_env_settings


def instructions() -> list[tuple[str, str]]:
    """``(INSTRUCTION, arguments)`` in order, continuation lines joined, comments dropped."""
    joined, current = [], ""
    for line in DOCKERFILE.read_text().splitlines():
        stripped = line.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue  # a comment inside a continued instruction
        current += " " + stripped.removesuffix("\\").strip() if current else stripped.removesuffix("\\").strip()
        if not stripped.endswith("\\"):
            joined.append(current)
            current = ""
    return [(text.split(None, 1)[0].upper(), text.split(None, 1)[1] if " " in text else "") for text in joined]


def stages() -> dict[str, list[tuple[str, str]]]:
    """Instructions by stage name (``FROM … AS name``); the global ARGs under ``""``."""
    by_stage, name = {"": []}, ""
    for instruction, args in instructions():
        if instruction == "FROM":
            name = args.split()[-1] if " as " in args.lower() else args
            by_stage[name] = []
        by_stage[name].append((instruction, args))
    return by_stage


def final_stage() -> list[tuple[str, str]]:
    return list(stages().values())[-1]


def env_of(stage: list[tuple[str, str]]) -> dict[str, str]:
    env = {}
    for instruction, args in stage:
        if instruction == "ENV":
            env.update(dict(part.split("=", 1) for part in shlex.split(args)))
    return env


def test_variant_argument_chooses_the_base():
    by_stage = stages()
    assert ("ARG", "VARIANT=cpu") in by_stage[""]
    global_args = dict(a.split("=", 1) for i, a in by_stage[""] if i == "ARG" and "=" in a)
    assert global_args["PYTHON_IMAGE"].startswith("python:3.11-slim")
    assert re.fullmatch(r"nvidia/cuda:12\.[\d.]+-runtime-ubuntu[\d.]+", global_args["CUDA_IMAGE"])
    assert by_stage["os-cpu"][0] == ("FROM", "${PYTHON_IMAGE} AS os-cpu")
    assert by_stage["os-cuda"][0] == ("FROM", "${CUDA_IMAGE} AS os-cuda")
    assert by_stage["os"][0] == ("FROM", "os-${VARIANT} AS os")


def test_multi_stage_build_installs_the_cpu_variant_from_the_lock_with_torch_from_the_cpu_index():
    by_stage = stages()
    assert {"build", "runtime"} <= set(by_stage)
    build = " ".join(args for _, args in by_stage["build"])
    assert "https://download.pytorch.org/whl/cpu" in build
    assert '--extra-index-url "$TORCH_CPU_INDEX" -r requirements/cpu.txt' in build
    assert "--require-hashes --no-deps" in build and "pip check" in build
    assert ("COPY", "requirements/cpu.txt ./requirements/") in by_stage["build"]
    assert "torch==" in (ROOT / "requirements" / "cpu.txt").read_text()
    runtime = final_stage()
    assert runtime[0] == ("FROM", "os AS runtime")
    assert ("COPY", "--from=build /opt/gumbeld /opt/gumbeld") in runtime


def test_copied_sources_exist_and_pass_the_dockerignore():
    ignore = (DEPLOY.parent / ".dockerignore").read_text().split()
    for instruction, args in stages()["build"]:
        if instruction == "COPY" and not args.startswith("--from"):
            for source in shlex.split(args)[:-1]:
                if not source.endswith("*"):  # README.md* is optional
                    assert (ROOT / source).exists(), source
                assert f"!{source.rstrip('*')}" in ignore, f"{source} is left out of the build context"


def test_runtime_runs_gumbeld_as_a_non_root_user():
    runtime = dict((i, a) for i, a in final_stage())
    assert runtime["USER"].split(":")[0] not in ("root", "0")
    assert json.loads(runtime["ENTRYPOINT"]) == ["gumbeld"]
    assert json.loads(runtime["CMD"]) == ["run"]
    assert runtime["STOPSIGNAL"] == "SIGTERM"


def test_runtime_serves_metrics_on_all_interfaces_and_keeps_state_on_the_volume():
    runtime = final_stage()
    env = env_of(runtime)
    check_env_settings({k: v for k, v in env.items() if k.startswith("GUMBELD_")})
    volume = json.loads(dict(runtime)["VOLUME"])
    assert volume == ["/var/lib/gumbeld"]
    assert env["GUMBELD_METRICS__HOST"] == "0.0.0.0"
    assert env["GUMBELD_CHECKPOINT__DIRECTORY"] == "/var/lib/gumbeld"
    assert env["GUMBELD_DEAD_LETTER__PATH"].startswith("/var/lib/gumbeld/")
    port = MetricsSettings.model_fields["port"].default
    assert dict(runtime)["EXPOSE"] == str(port)


def healthcheck_command() -> list[str]:
    args = dict(final_stage())["HEALTHCHECK"]
    options, _, command = args.partition(" CMD ")
    assert "--start-period" in options
    return json.loads(command)


def test_healthcheck_asks_livez_without_curl():
    command = healthcheck_command()
    assert command[:2] == ["python", "-c"]
    assert "/livez" in command[2] and "urllib" in command[2]
