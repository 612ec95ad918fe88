"""deploy/kubernetes: the kustomization renders, and its manifests agree with each other and with gumbeld."""
from __future__ import annotations

import subprocess
import tomllib

import pytest
import yaml

from daemon.settings import GumbeldSettings

from .helpers import DOCKERFILE, KUBERNETES, check_settings, flatten_settings, unknown_env_vars

API_VERSIONS = {
    "Namespace": "v1", "Secret": "v1", "Service": "v1", "ConfigMap": "v1", "StatefulSet": "apps/v1", "Deployment": "apps/v1",
    "ServiceMonitor": "monitoring.coreos.com/v1", "PrometheusRule": "monitoring.coreos.com/v1",
}


def kustomization() -> dict:
    return yaml.safe_load((KUBERNETES / "kustomization.yaml").read_text())


def resources() -> list[dict]:
    docs = []
    for name in kustomization()["resources"]:
        docs += [d for d in yaml.safe_load_all((KUBERNETES / name).read_text()) if d]
    return docs


def one(kind: str, docs: list[dict] | None = None, name: str = "gumbeld") -> dict:
    (found,) = [d for d in (docs if docs is not None else resources())
                if d["kind"] == kind and (kind in ("Namespace", "Secret", "ConfigMap", "ServiceMonitor", "PrometheusRule")
                                          or d["metadata"]["name"] == name)]
    return found


def container(docs: list[dict] | None = None) -> dict:
    (found,) = one("StatefulSet", docs)["spec"]["template"]["spec"]["containers"]
    return found


def settings_file() -> dict:
    (generator,) = kustomization()["configMapGenerator"]
    (name,) = generator["files"]
    return tomllib.loads((KUBERNETES / name).read_text())


def test_every_listed_file_exists():
    k = kustomization()
    files = list(k["resources"]) + [f for g in k.get("configMapGenerator", []) for f in g["files"]]
    for name in files:
        assert (KUBERNETES / name).is_file(), name


def test_kinds_and_api_versions():
    docs = resources()
    assert {d["kind"] for d in docs} == set(API_VERSIONS) - {"ConfigMap"}
    for doc in docs:
        assert doc["apiVersion"] == API_VERSIONS[doc["kind"]], doc["kind"]
        assert doc["metadata"]["name"]


def test_settings_file_holds_valid_gumbeld_settings():
    check_settings(flatten_settings(settings_file()))


def test_env_var_names_are_gumbeld_settings():
    c = container()
    names = [e["name"] for e in c.get("env", [])]
    names += list(one("Secret")["stringData"])
    assert unknown_env_vars(names) == []
    assert "GUMBELD_SOURCE__KAFKA__SASL_PASSWORD" in one("Secret")["stringData"]
    secret_refs = [s["secretRef"]["name"] for s in c["envFrom"]]
    assert secret_refs == [one("Secret")["metadata"]["name"]]


def test_config_file_is_mounted_where_gumbeld_config_points():
    c, spec = container(), one("StatefulSet")["spec"]["template"]["spec"]
    config = {e["name"]: e["value"] for e in c["env"]}["GUMBELD_CONFIG"]
    (generator,) = kustomization()["configMapGenerator"]
    (volume,) = [v for v in spec["volumes"] if v.get("configMap", {}).get("name") == generator["name"]]
    (mount,) = [m for m in c["volumeMounts"] if m["name"] == volume["name"]]
    assert config == f"{mount['mountPath']}/{generator['files'][0]}"
    assert mount["readOnly"] is True


def test_probes_and_ports_match_the_metrics_port():
    c = container()
    (port,) = c["ports"]
    expected = settings_file().get("metrics", {}).get("port", GumbeldSettings().metrics.port)
    assert port["containerPort"] == expected
    for probe, path in (("livenessProbe", "/livez"), ("readinessProbe", "/readyz"), ("startupProbe", "/livez")):
        get = c[probe]["httpGet"]
        assert get["path"] == path, probe
        assert get["port"] in (port["name"], port["containerPort"]), probe
    service = one("Service")
    (service_port,) = service["spec"]["ports"]
    assert service_port["targetPort"] in (port["name"], port["containerPort"])
    (endpoint,) = one("ServiceMonitor")["spec"]["endpoints"]
    assert (endpoint["port"], endpoint["path"]) == (service_port["name"], "/metrics")


def test_selectors_and_names_line_up():
    statefulset, service, monitor = one("StatefulSet"), one("Service"), one("ServiceMonitor")
    pod_labels = statefulset["spec"]["template"]["metadata"]["labels"]
    assert statefulset["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert statefulset["spec"]["serviceName"] == service["metadata"]["name"]
    # the alert rules select job="gumbeld"
    assert service["metadata"]["labels"][monitor["spec"]["jobLabel"]] == "gumbeld"


def test_resources_request_a_gpu():
    c = container()
    for part in ("requests", "limits"):
        assert str(c["resources"][part]["nvidia.com/gpu"]) == "1", part
    assert {"cpu", "memory"} <= set(c["resources"]["requests"])
    assert "memory" in c["resources"]["limits"]
    assert settings_file()["training"]["device"].startswith("cuda")


def test_grace_period_leaves_room_for_the_final_checkpoint():
    spec = one("StatefulSet")["spec"]["template"]["spec"]
    timeout = settings_file().get("shutdown_timeout", GumbeldSettings().shutdown_timeout)
    assert spec["terminationGracePeriodSeconds"] >= 2 * timeout + 20


def test_runs_non_root_on_a_read_only_root_with_the_checkpoint_volume_writable():
    statefulset = one("StatefulSet")
    spec, c = statefulset["spec"]["template"]["spec"], container()
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["runAsUser"] != 0
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    assert c["securityContext"]["allowPrivilegeEscalation"] is False
    assert c["securityContext"]["capabilities"]["drop"] == ["ALL"]
    checkpoint_dir = next(line.split("=", 1)[1].split()[0] for line in DOCKERFILE.read_text().split()
                          if line.startswith("GUMBELD_CHECKPOINT__DIRECTORY="))
    (claim,) = statefulset["spec"]["volumeClaimTemplates"]
    mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
    assert mounts[checkpoint_dir]["name"] == claim["metadata"]["name"]
    assert not mounts[checkpoint_dir].get("readOnly", False)
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    (tmp,) = [v for v in spec["volumes"] if v["name"] == mounts["/tmp"]["name"]]
    assert "emptyDir" in tmp


@pytest.fixture(scope="module")
def rendered(kubectl) -> list[dict]:
    result = subprocess.run([kubectl, "kustomize", str(KUBERNETES)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return [d for d in yaml.safe_load_all(result.stdout) if d]


def test_kustomize_renders_every_resource_into_the_namespace(rendered):
    namespace = kustomization()["namespace"]
    assert sorted({d["kind"] for d in rendered}) == sorted(API_VERSIONS)
    for doc in rendered:
        if doc["kind"] != "Namespace":
            assert doc["metadata"]["namespace"] == namespace, doc["kind"]


def test_kustomize_names_the_config_map_by_content_and_sets_the_image(rendered):
    config_map = one("ConfigMap", rendered)
    assert config_map["metadata"]["name"].startswith("gumbeld-config-")
    volumes = one("StatefulSet", rendered)["spec"]["template"]["spec"]["volumes"]
    assert config_map["metadata"]["name"] in [v.get("configMap", {}).get("name") for v in volumes]
    assert tomllib.loads(config_map["data"]["gumbeld.toml"]) == settings_file()
    (image,) = kustomization()["images"]
    assert container(rendered)["image"] == f"{image['newName']}:{image['newTag']}"


def test_the_read_servers_serve_the_learned_topic_from_the_same_settings_without_a_gpu():
    deployment, service = one("Deployment", name="gumbeld-serve"), one("Service", name="gumbeld-serve")
    spec = deployment["spec"]["template"]["spec"]
    (c,) = spec["containers"]
    assert c["args"] == ["serve"] and "nvidia.com/gpu" not in c["resources"]["requests"]
    assert settings_file()["sinks"]["kafka"]["topic"]  # what gumbeld serve reads
    config = {e["name"]: e["value"] for e in c["env"]}["GUMBELD_CONFIG"]
    (volume,) = [v for v in spec["volumes"] if v.get("configMap", {}).get("name") == "gumbeld-config"]
    (mount,) = [m for m in c["volumeMounts"] if m["name"] == volume["name"]]
    assert config.startswith(mount["mountPath"] + "/")
    (port,) = c["ports"]
    assert port["containerPort"] == settings_file().get("metrics", {}).get("port", GumbeldSettings().metrics.port)
    assert (c["livenessProbe"]["httpGet"]["path"], c["readinessProbe"]["httpGet"]["path"]) == ("/livez", "/readyz")
    assert service["spec"]["selector"].items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    assert deployment["spec"]["selector"]["matchLabels"].items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    assert c["securityContext"]["readOnlyRootFilesystem"] is True and spec["securityContext"]["runAsNonRoot"] is True
