"""The Kubernetes manifests: valid against the API schemas, complete, one namespace per site.

kubectl and kustomize are not available here, so the overlays are applied the simple way
kustomize would for what they use (namespace, a ConfigMap patch) and every resulting object
is validated with kubernetes-validate in strict mode.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

K8S = Path(__file__).parent.parent / "deploy" / "k8s"
VERSION = "1.37.0"


def documents(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def build(folder: Path) -> list[dict[str, Any]]:
    """The objects a kustomization produces (resources, namespace, patches by name)."""
    kust = documents(folder / "kustomization.yaml")[0]
    objects: list[dict[str, Any]] = []
    for res in kust.get("resources", []):
        target = folder / res
        assert target.exists(), f"{folder}/kustomization.yaml names missing {res}"
        objects.extend(build(target) if target.is_dir() else documents(target))
    for patch in kust.get("patches", []):
        for p in documents(folder / patch["path"]):
            matches = [o for o in objects if o["kind"] == p["kind"]
                       and o["metadata"]["name"] == p["metadata"]["name"]]
            assert matches, f"patch {patch['path']} matches nothing"
            for o in matches:
                o.setdefault("data", {}).update(p.get("data", {}))
    for o in objects:
        labels = o["metadata"].setdefault("labels", {})
        for extra in kust.get("labels", []):
            labels.update(extra["pairs"])
        if "namespace" in kust and o["kind"] != "Namespace":
            o["metadata"]["namespace"] = kust["namespace"]
    return copy.deepcopy(objects)


def validate(obj: dict[str, Any]) -> None:
    kubernetes_validate.validate(obj, VERSION, strict=True)


@pytest.mark.parametrize("site", ["site-a", "site-b"])
def test_overlay_objects_are_valid(site: str) -> None:
    objects = build(K8S / "overlays" / site)
    assert {o["kind"] for o in objects} >= {"Deployment", "StatefulSet", "Service", "ConfigMap",
                                            "Secret", "Namespace"}
    for obj in objects:
        validate(obj)


def test_sites_are_separate() -> None:
    a, b = build(K8S / "overlays" / "site-a"), build(K8S / "overlays" / "site-b")

    def site_of(objs: list[dict[str, Any]]) -> tuple[set[str], str]:
        namespaces = {o["metadata"].get("namespace") for o in objs if o["kind"] != "Namespace"}
        config = next(o for o in objs if o["kind"] == "ConfigMap")
        return namespaces, config["data"]["AWE_SITE"]

    assert site_of(a) == ({"awe-site-a"}, "site-a")
    assert site_of(b) == ({"awe-site-b"}, "site-b")


def test_every_workload_has_limits_and_probes() -> None:
    workloads = [o for o in build(K8S / "base") if o["kind"] in ("Deployment", "StatefulSet")]
    assert {w["metadata"]["name"] for w in workloads} == {
        "postgres", "kafka", "minio", "catalog", "catalog-relay", "storage", "lineage",
        "federation", "compute", "compute-worker"}
    for w in workloads:
        for c in w["spec"]["template"]["spec"]["containers"]:
            name = f"{w['metadata']['name']}/{c['name']}"
            assert c["resources"]["limits"], name
            assert "readinessProbe" in c and "livenessProbe" in c, name
            assert w["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"], name


def test_a_broken_manifest_is_rejected() -> None:
    deployment = next(o for o in build(K8S / "base") if o["metadata"]["name"] == "catalog"
                      and o["kind"] == "Deployment")
    bad = copy.deepcopy(deployment)
    bad["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(bad)
    unknown = copy.deepcopy(deployment)
    unknown["spec"]["template"]["spec"]["containers"][0]["colour"] = "blue"
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(unknown)
