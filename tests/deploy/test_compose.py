"""deploy/docker-compose.yml, validated by docker-compose itself and then read for what it must say."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from .helpers import COMPOSE, DEPLOY, ROOT, check_env_settings

SERVICES = {"kafka", "kafka-init", "gumbeld", "gumbeld-serve", "producer", "prometheus", "grafana"}


@pytest.fixture(scope="module")
def compose(docker_compose) -> dict:
    """The file as docker-compose resolves it (paths absolute, variables at their defaults)."""
    result = subprocess.run([docker_compose, "-f", str(COMPOSE), "config"], capture_output=True, text=True,
                            timeout=120, env={"PATH": "/usr/bin:/bin"}, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    return yaml.safe_load(result.stdout)


def test_docker_compose_validates_the_file(compose):
    assert set(compose["services"]) == SERVICES


def test_the_file_has_no_version_key_compose_v2_would_warn_about():
    assert "version" not in yaml.safe_load(COMPOSE.read_text())


def test_gumbeld_is_built_from_the_dockerfile_with_the_repository_as_context(compose):
    build = compose["services"]["gumbeld"]["build"]
    assert Path(build["context"]) == ROOT
    assert build["dockerfile"] == "deploy/Dockerfile"
    assert build["args"]["VARIANT"] == "cuda"
    assert compose["services"]["producer"]["image"] == compose["services"]["gumbeld"]["image"]


def test_gumbeld_reserves_a_gpu(compose):
    devices = compose["services"]["gumbeld"]["deploy"]["resources"]["reservations"]["devices"]
    assert devices == [{"driver": "nvidia", "count": 1, "capabilities": ["gpu"]}]
    assert compose["services"]["gumbeld"]["environment"]["GUMBELD_TRAINING__DEVICE"] == "cuda"


def test_gumbeld_reads_kafka_and_waits_for_it(compose):
    gumbeld = compose["services"]["gumbeld"]
    env = gumbeld["environment"]
    assert env["GUMBELD_SOURCE__KIND"] == "kafka"
    assert env["GUMBELD_SOURCE__KAFKA__BOOTSTRAP_SERVERS"] == "kafka:9092"
    assert yaml.safe_load(env["GUMBELD_SOURCE__KAFKA__TOPICS"]) == ["events"]
    assert env["GUMBELD_SOURCE__KAFKA__GROUP_ID"] == "gumbeld"
    assert env["GUMBELD_SINKS__KAFKA__TOPIC"] == "learned-distributions"
    check_env_settings(env)
    assert gumbeld["depends_on"] == {"kafka": {"condition": "service_healthy"},
                                     "kafka-init": {"condition": "service_completed_successfully"}}
    assert "healthcheck" in compose["services"]["kafka"]


def test_gumbeld_keeps_its_state_on_a_volume_and_stops_gracefully(compose):
    gumbeld = compose["services"]["gumbeld"]
    assert any(v.split(":")[1] == "/var/lib/gumbeld" for v in gumbeld["volumes"])
    assert {"published": 9464, "target": 9464} in [{k: int(v) for k, v in p.items() if k in ("published", "target")}
                                                   for p in gumbeld["ports"]]
    seconds = int(gumbeld["stop_grace_period"].rstrip("s"))
    assert seconds > 8 + 10, "the default shutdown_timeout (8 s) needs room"


def test_the_topics_are_created_once_with_their_settings(compose):
    init = compose["services"]["kafka-init"]
    script = " ".join(init["command"]).replace("$$", "$")
    assert "--topic events --partitions 4" in script
    assert "--topic learned-distributions" in script and "cleanup.policy=compact" in script
    assert "--topic gumbeld-dead-letters" in script
    assert init["restart"] == "no"


def test_the_producer_runs_the_load_generator(compose):
    producer = compose["services"]["producer"]
    assert producer["command"] == ["produce", "--bootstrap-servers", "kafka:9092", "--topic", "events",
                                   "--rate", "5000"]
    assert producer["depends_on"]["kafka-init"] == {"condition": "service_completed_successfully"}


def test_the_read_server_serves_the_topic_gumbeld_publishes(compose):
    serve, gumbeld = compose["services"]["gumbeld-serve"], compose["services"]["gumbeld"]
    assert serve["command"] == ["serve"]
    for setting in ("GUMBELD_SINKS__KAFKA__TOPIC", "GUMBELD_SOURCE__KAFKA__BOOTSTRAP_SERVERS"):
        assert serve["environment"][setting] == gumbeld["environment"][setting]
    assert serve["ports"][0]["target"] == 9464 and "deploy" not in serve  # no GPU
    assert serve["depends_on"]["kafka-init"] == {"condition": "service_completed_successfully"}


@pytest.mark.parametrize("service", ["prometheus", "grafana"])
def test_mounted_files_exist(compose, service):
    for volume in compose["services"][service]["volumes"]:
        source = volume.split(":")[0]
        if source.startswith("/"):
            assert Path(source).exists(), source
            assert Path(source).resolve().is_relative_to(DEPLOY), source


def test_grafana_is_provisioned_with_the_datasource_and_the_dashboard():
    datasources = yaml.safe_load((DEPLOY / "grafana/provisioning/datasources/prometheus.yml").read_text())
    (source,) = datasources["datasources"]
    assert (source["type"], source["url"]) == ("prometheus", "http://prometheus:9090")
    providers = yaml.safe_load((DEPLOY / "grafana/provisioning/dashboards/gumbeld.yml").read_text())
    (provider,) = providers["providers"]
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards"
    compose_file = yaml.safe_load(COMPOSE.read_text())
    assert "./grafana/dashboards:/var/lib/grafana/dashboards:ro" in compose_file["services"]["grafana"]["volumes"]


def test_compose_variables_are_not_taken_for_gumbeld_settings():
    variables = set(re.findall(r"\$\{(\w+)", COMPOSE.read_text()))
    assert variables and not {v for v in variables if v.startswith("GUMBELD_")}


def test_image_variant_and_device_can_be_switched_to_cpu(docker_compose):
    env = {"PATH": "/usr/bin:/bin", "IMAGE_VARIANT": "cpu", "TRAINING_DEVICE": "cpu"}
    result = subprocess.run([docker_compose, "-f", str(COMPOSE), "config"], capture_output=True, text=True,
                            timeout=120, env=env, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    gumbeld = yaml.safe_load(result.stdout)["services"]["gumbeld"]
    assert (gumbeld["build"]["args"]["VARIANT"], gumbeld["image"]) == ("cpu", "gumbeld:cpu")
    assert gumbeld["environment"]["GUMBELD_TRAINING__DEVICE"] == "cpu"
