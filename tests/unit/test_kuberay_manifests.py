"""The KubeRay manifests (clusters/kuberay-*.yaml) held against the CRD schemas of the KubeRay releases they need.

    pytest tests/unit/test_kuberay_manifests.py

Every document is validated with ``jsonschema`` against the ``openAPIV3Schema`` of the vendored CRDs
(tests/data/kuberay/<tag>/, copied unchanged from the kuberay repository: the oldest release the manifests need
and the newest) under the API server's strict field validation (kubectl's default): a field the schema does not
name is an error, so a misspelled key fails here as it would at ``kubectl apply``. A PersistentVolumeClaim's spec
is checked against the PersistentVolumeClaimSpec schema embedded in the same CRD; ObjectMeta and ConfigMap have
no CRD, so a small schema here names the fields they may set. A few operator rules that no schema carries (read
in ray-operator/controllers/ray/utils/validation.go at v1.7.0) are checked as such. Nothing is deployed.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from intern.config import CLUSTERS_DIR
from intern.resolve import load_config

CRDS = Path(__file__).resolve().parents[1] / "data" / "kuberay"
#: The oldest KubeRay the manifests need (``spec.authOptions.secretName``) and the newest at vendoring.
RELEASES = ("v1.6.0", "v1.7.0")
MIN_KUBERAY = RELEASES[0]
MANIFESTS = ("kuberay-raycluster.yaml", "kuberay-rayjob.yaml")
HEADER_LINES = 4
_CRD_FILES = {"RayCluster": "ray.io_rayclusters.yaml", "RayJob": "ray.io_rayjobs.yaml"}
_DNS1123_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
_DNS1035_LABEL = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"
_STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
#: ObjectMeta's fields a manifest may set (k8s.io/apimachinery ObjectMeta); the server fills the rest.
OBJECT_META = {"type": "object", "additionalProperties": False, "required": ["name"], "properties": {
    "name": {"type": "string", "maxLength": 253, "pattern": _DNS1123_SUBDOMAIN},
    "namespace": {"type": "string", "pattern": _DNS1123_SUBDOMAIN},
    "labels": _STRING_MAP, "annotations": _STRING_MAP}}
#: A core/v1 ConfigMap: no CRD carries its schema (k8s.io/api/core/v1 ConfigMap).
CONFIG_MAP = {"type": "object", "additionalProperties": False, "required": ["apiVersion", "kind", "metadata"],
              "properties": {"apiVersion": {"const": "v1"}, "kind": {"const": "ConfigMap"}, "metadata": OBJECT_META,
                             "data": _STRING_MAP, "binaryData": _STRING_MAP, "immutable": {"type": "boolean"}}}


def strict(schema: Any) -> Any:
    """An OpenAPI v3 schema of a CRD as JSON Schema, with the API server's strict field validation: an object
    whose properties are listed takes no others (unless ``x-kubernetes-preserve-unknown-fields``)."""
    if isinstance(schema, list):
        return [strict(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "properties":
            out[key] = {name: strict(s) for name, s in value.items()}
        elif key in ("items", "additionalProperties", "not", "allOf", "anyOf", "oneOf"):
            out[key] = strict(value)
        elif not key.startswith("x-kubernetes-") and key != "nullable":
            out[key] = value
    if schema.get("x-kubernetes-int-or-string") and "anyOf" not in out:
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if schema.get("nullable") and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    if (out.get("type") == "object" and "properties" in out and "additionalProperties" not in out
            and not schema.get("x-kubernetes-preserve-unknown-fields")):
        out["additionalProperties"] = False
    return out


def _load_yaml(text: str) -> Any:
    return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # 1.5 s, not 5, per CRD


@functools.cache
def crd_schema(release: str, kind: str) -> dict:
    """The strict schema of ``kind`` (served version v1) in a vendored release's CRD."""
    crd = _load_yaml((CRDS / release / _CRD_FILES[kind]).read_text())
    assert crd["spec"]["names"]["kind"] == kind
    [version] = [v for v in crd["spec"]["versions"] if v["name"] == "v1" and v["served"]]
    schema = strict(version["schema"]["openAPIV3Schema"])
    schema["properties"]["metadata"] = OBJECT_META
    return schema


def pvc_schema(release: str) -> dict:
    """core/v1 PersistentVolumeClaim, its spec as the RayCluster CRD embeds it (a pod's ephemeral volume)."""
    pod = crd_schema(release, "RayCluster")["properties"]["spec"]["properties"]["headGroupSpec"]["properties"][
        "template"]["properties"]["spec"]
    spec = pod["properties"]["volumes"]["items"]["properties"]["ephemeral"]["properties"]["volumeClaimTemplate"][
        "properties"]["spec"]
    return {"type": "object", "additionalProperties": False, "required": ["apiVersion", "kind", "metadata", "spec"],
            "properties": {"apiVersion": {"const": "v1"}, "kind": {"const": "PersistentVolumeClaim"},
                           "metadata": OBJECT_META, "spec": spec}}


def problems(doc: dict, release: str) -> list[str]:
    """Every schema error of one manifest document under a release's CRDs, as ``path: message``."""
    kind = doc.get("kind")
    if kind in _CRD_FILES:
        assert doc.get("apiVersion") == "ray.io/v1", doc.get("apiVersion")
        schema = crd_schema(release, kind)
    elif kind == "PersistentVolumeClaim":
        schema = pvc_schema(release)
    elif kind == "ConfigMap":
        schema = CONFIG_MAP
    else:
        return [f"<root>: no schema here for kind {kind!r}"]
    validator = jsonschema.Draft4Validator(schema)
    return [f"{'.'.join(str(p) for p in e.absolute_path) or '<root>'}: {e.message[:300]}"
            for e in validator.iter_errors(doc)]


def documents(name: str) -> list[dict]:
    return [d for d in yaml.safe_load_all((CLUSTERS_DIR / name).read_text()) if d]


def by_kind(name: str) -> dict[str, dict]:
    return {d["kind"]: d for d in documents(name)}


@pytest.mark.parametrize("release", RELEASES)
@pytest.mark.parametrize("kind", sorted(_CRD_FILES))
def test_the_vendored_crds_are_the_upstream_files(release: str, kind: str) -> None:
    text = (CRDS / release / _CRD_FILES[kind]).read_text()
    header, body = text.split("\n", HEADER_LINES)[:HEADER_LINES], text.split("\n", HEADER_LINES)[HEADER_LINES]
    assert f"at tag {release}" in header[0] and "ray-operator/config/crd/bases/" in header[1]
    recorded = re.search(r"sha256 of the upstream file: ([0-9a-f]{64})", header[2]).group(1)
    assert hashlib.sha256(body.encode()).hexdigest() == recorded


@pytest.mark.parametrize("release", RELEASES)
@pytest.mark.parametrize("name", MANIFESTS)
def test_every_manifest_document_fits_the_crd_schemas(name: str, release: str) -> None:
    docs = documents(name)
    assert docs and all(d["kind"] in (*_CRD_FILES, "PersistentVolumeClaim", "ConfigMap") for d in docs)
    for doc in docs:
        assert problems(doc, release) == [], f"{name} {doc['kind']} under KubeRay {release}"


# Each is a misspelling a user could make (or an upgrade could bring); the schema must refuse it.
MISSPELLINGS = [
    ("kuberay-raycluster.yaml", "RayCluster", ["spec", "authOptions", "secretName"], "secretname"),
    ("kuberay-raycluster.yaml", "RayCluster", ["spec", "enableInTreeAutoscaling"], "enableInTreeAutoScaling"),
    ("kuberay-raycluster.yaml", "RayCluster", ["spec", "headGroupSpec", "template", "spec", "containers", 0,
                                               "volumeMounts"], "volumeMount"),
    ("kuberay-raycluster.yaml", "RayCluster", ["spec", "workerGroupSpecs", 0, "maxReplicas"], "maxReplica"),
    ("kuberay-raycluster.yaml", "PersistentVolumeClaim", ["spec", "accessModes"], "accessMode"),
    ("kuberay-rayjob.yaml", "RayJob", ["spec", "runtimeEnvYAML"], "runtimeEnvYaml"),
    ("kuberay-rayjob.yaml", "RayJob", ["spec", "submitterPodTemplate", "spec", "volumes", 0, "configMap"],
     "configmap"),
    ("kuberay-rayjob.yaml", "ConfigMap", ["data"], "date"),
    ("kuberay-rayjob.yaml", "RayJob", ["metadata", "name"], "nmae"),
]


@pytest.mark.parametrize("name,kind,path,wrong", MISSPELLINGS, ids=lambda v: v if isinstance(v, str) else None)
def test_a_misspelled_field_is_refused(name: str, kind: str, path: list, wrong: str) -> None:
    doc = copy.deepcopy(by_kind(name)[kind])
    parent = doc
    for step in path[:-1]:
        parent = parent[step]
    parent[wrong] = parent.pop(path[-1])
    found = problems(doc, RELEASES[-1])
    assert any(wrong in p for p in found), found


def test_a_wrong_type_is_refused() -> None:
    rc = copy.deepcopy(by_kind("kuberay-raycluster.yaml")["RayCluster"])
    rc["spec"]["workerGroupSpecs"][0]["maxReplicas"] = "four"
    rc["spec"]["authOptions"]["mode"] = "password"
    found = problems(rc, RELEASES[-1])
    assert any("maxReplicas" in p for p in found) and any("authOptions.mode" in p for p in found), found


def test_authoptions_secretname_is_what_sets_the_minimum_kuberay_release() -> None:
    """The oldest vendored release is the first whose CRD has ``authOptions.secretName`` (the README's minimum)."""
    auth = crd_schema(MIN_KUBERAY, "RayCluster")["properties"]["spec"]["properties"]["authOptions"]
    assert set(auth["properties"]) >= {"mode", "secretName"} and auth["properties"]["mode"]["enum"] == [
        "disabled", "token"]
    assert f"KubeRay >= {MIN_KUBERAY.removeprefix('v')}" in (CLUSTERS_DIR / MANIFESTS[0]).read_text()
    assert f"KubeRay >= {MIN_KUBERAY.removeprefix('v')}" in (CLUSTERS_DIR / MANIFESTS[1]).read_text()


def _containers(pod_spec: dict) -> list[dict]:
    return pod_spec.get("containers", []) + pod_spec.get("initContainers", [])


def test_token_auth_is_the_operators_and_nothing_sets_it_by_hand() -> None:
    """With ``spec.authOptions`` the operator gives the token to the Ray containers, the autoscaler, the init
    containers and a RayJob's submitter, and polls the job with it; a hand-set env var would be a second source."""
    rc = by_kind("kuberay-raycluster.yaml")["RayCluster"]
    job = by_kind("kuberay-rayjob.yaml")["RayJob"]
    auth = rc["spec"]["authOptions"]
    assert auth == {"mode": "token", "secretName": "intern-ray-token"}
    assert f"kubectl create secret generic {auth['secretName']}" in (CLUSTERS_DIR / MANIFESTS[0]).read_text()
    major, minor, _ = (int(x) for x in rc["spec"]["rayVersion"].split("."))
    assert (major, minor) >= (2, 52)  # validation.go: token auth needs Ray >= 2.52.0
    pods = [rc["spec"]["headGroupSpec"]["template"]["spec"], job["spec"]["submitterPodTemplate"]["spec"],
            *(g["template"]["spec"] for g in rc["spec"]["workerGroupSpecs"])]
    for container in (c for pod in pods for c in _containers(pod)):
        names = {e["name"] for e in container.get("env", [])}
        assert not names & {"RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH"}, container["name"]
    assert rc["spec"]["enableInTreeAutoscaling"] is True  # the sidecar that needs the operator's token


def test_the_rayjob_fits_its_cluster_and_the_operators_rules() -> None:
    rc = by_kind("kuberay-raycluster.yaml")["RayCluster"]
    job = by_kind("kuberay-rayjob.yaml")["RayJob"]
    spec = job["spec"]
    assert spec["clusterSelector"] == {"ray.io/cluster": rc["metadata"]["name"]}
    # validation.go: with clusterSelector, no retries (backoffLimit > 0) and no SidecarMode; a DNS-1035 name
    # of at most 47 characters (MaxRayClusterNameLength - 6)
    assert spec.get("backoffLimit", 0) <= 0 and spec["submissionMode"] == "K8sJobMode"
    assert re.match(_DNS1035_LABEL, job["metadata"]["name"]) and len(job["metadata"]["name"]) <= 47
    assert spec["activeDeadlineSeconds"] > 0
    pods = [rc["spec"]["headGroupSpec"]["template"]["spec"], spec["submitterPodTemplate"]["spec"],
            *(g["template"]["spec"] for g in rc["spec"]["workerGroupSpecs"])]
    # the Ray in each image's tag (intern:0.1.0-ray2.60.0-py311-gpu, ray:2.60.0-py311): the cluster's
    versions = {re.search(r"(\d+\.\d+\.\d+)-py", c["image"]).group(1) for pod in pods for c in pod["containers"]}
    assert versions == {rc["spec"]["rayVersion"]}, versions


def test_the_run_config_reaches_the_job_without_the_heads_volumes(tmp_path: Path) -> None:
    """The submitter mounts the ConfigMap (not optional: its pod waits for it) at the folder its ``ray job
    submit`` uploads as the job's working directory; the entrypoint reads the config from there. (That Ray
    uploads a kubelet-style ConfigMap folder, symlinks and all: tests/integration/test_cluster_rehearsal.py.)"""
    cm, job = by_kind("kuberay-rayjob.yaml")["ConfigMap"], by_kind("kuberay-rayjob.yaml")["RayJob"]
    rc = by_kind("kuberay-raycluster.yaml")["RayCluster"]
    working_dir = yaml.safe_load(job["spec"]["runtimeEnvYAML"])["working_dir"]
    submitter = job["spec"]["submitterPodTemplate"]["spec"]
    volumes = {v["name"]: v for v in submitter["volumes"]}
    [mount] = [m for m in submitter["containers"][0]["volumeMounts"] if m["mountPath"] == working_dir]
    source = volumes[mount["name"]]["configMap"]
    assert source["name"] == cm["metadata"]["name"] and not source.get("optional", False)
    argv = job["spec"]["entrypoint"].split()
    assert argv[:2] == ["intern", "run"]
    config = argv[argv.index("--config") + 1]
    assert "/" not in config and config in cm["data"]  # relative: the job's working directory
    head_pod = rc["spec"]["headGroupSpec"]["template"]["spec"]
    assert not any("configMap" in v for v in head_pod["volumes"])  # the head starts without it
    path = tmp_path / config
    path.write_text(cm["data"][config])
    cfg = load_config(path)
    assert cfg.cluster.name == "h100" and cfg.cluster.train.use_gpu
    assert cfg.sandbox.isolation == "process"  # the pods cannot run bubblewrap (the manifest says why)
    assert json.dumps(yaml.safe_load(job["spec"]["runtimeEnvYAML"])) == json.dumps({"working_dir": working_dir})
