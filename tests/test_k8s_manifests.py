"""The Kubernetes manifests: rendered by ``kubectl kustomize``, valid against the API schemas
(kubernetes-validate, strict), and a site that boots: locked-down pods, probes that look at
the work, disruption budgets, network policies, two sites that federate, workers scaled on
their lag. The bootstrap Job's script and the relay's and workers' probe script are run
here too, against a real PostgreSQL and catalog.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import importlib.util
import json
import os
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import asyncpg
import httpx
import kubernetes_validate
import pytest
import yaml
from conftest import ADMIN_TOKEN, start_service

from awe_catalog.relay import CURSOR
from awe_compute.config import ComputeSettings
from awe_compute.worker import Worker
from awecore.events import topic
from awecore.server import KafkaSettings, ensure_topics, make_consumer
from awecore.stack import Broker, PostgresServer, free_port

K8S = Path(__file__).parent.parent / "deploy" / "k8s"
VERSION = "1.37.0"  # the Kubernetes schemas validated against (kubernetes-validate's newest)
SITES = {"site-a": "site-b", "site-b": "site-a"}  # each site and its peer
#: custom resources: not in the Kubernetes schemas, so not validated by kubernetes-validate;
#: test_workers_scale_on_kafka_lag checks their fields instead
CUSTOM_RESOURCES = {("keda.sh/v1alpha1", "ScaledObject")}
#: what the operator provides, in the Secret awe-secrets (the README says how)
OPERATOR_KEYS = {"POSTGRES_PASSWORD", "AWE_CATALOG_ADMIN_TOKEN", "MINIO_ROOT_USER",
                 "MINIO_ROOT_PASSWORD", "AWE_PORTAL_SECRET_KEY"}
WORKLOADS = {"postgres", "kafka", "minio", "catalog", "catalog-relay", "storage", "lineage",
             "federation", "compute", "compute-worker", "portal", "vo"}
Obj = dict[str, Any]


# -- rendering -----------------------------------------------------------------------------
def kustomize(folder: Path) -> list[Obj]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.fail("kubectl is needed: `kubectl kustomize` renders the overlays")
    done = subprocess.run([kubectl, "kustomize", str(folder)], capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, f"kubectl kustomize {folder}: {done.stderr}"
    return [d for d in yaml.safe_load_all(done.stdout) if d]


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[Obj]]:
    return {site: kustomize(K8S / "overlays" / site) for site in SITES}


def objects(rendered: dict[str, list[Obj]], site: str) -> list[Obj]:
    return copy.deepcopy(rendered[site])


def one(objs: list[Obj], kind: str, name: str) -> Obj:
    found = [o for o in objs if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} found"
    return found[0]


def pod_specs(objs: list[Obj]) -> Iterator[tuple[Obj, Obj]]:
    """(workload, pod spec) of every Deployment, StatefulSet and Job."""
    for o in objs:
        if o["kind"] in ("Deployment", "StatefulSet", "Job"):
            yield o, o["spec"]["template"]["spec"]


def container(objs: list[Obj], kind: str, name: str) -> Obj:
    [c] = one(objs, kind, name)["spec"]["template"]["spec"]["containers"]
    return dict(c)


def env(c: Obj) -> dict[str, Obj]:
    return {e["name"]: e for e in c.get("env", [])}


def validate(obj: Obj) -> None:
    kubernetes_validate.validate(obj, VERSION, strict=True)


def script(name: str) -> ModuleType:
    """A script the manifests mount from the ConfigMap awe-scripts, imported from the repo."""
    spec = importlib.util.spec_from_file_location(name, K8S / "base" / "scripts" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


# -- valid, separate -----------------------------------------------------------------------
@pytest.mark.parametrize("site", SITES)
def test_overlay_objects_are_valid(rendered: dict[str, list[Obj]], site: str) -> None:
    objs = objects(rendered, site)
    assert {o["kind"] for o in objs} >= {
        "Namespace", "ConfigMap", "Secret", "ServiceAccount", "Role", "RoleBinding",
        "Service", "Deployment", "StatefulSet", "Job", "PodDisruptionBudget",
        "NetworkPolicy", "ScaledObject"}
    for obj in objs:
        if (obj["apiVersion"], obj["kind"]) in CUSTOM_RESOURCES:
            with pytest.raises(kubernetes_validate.utils.SchemaNotFoundError):
                validate(obj)  # skipped on purpose: no schema for a CRD
            continue
        validate(obj)


def test_sites_are_separate(rendered: dict[str, list[Obj]]) -> None:
    for site in SITES:
        objs = objects(rendered, site)
        namespaces = {o["metadata"].get("namespace") for o in objs if o["kind"] != "Namespace"}
        assert namespaces == {f"awe-{site}"}
        assert one(objs, "ConfigMap", "awe-config")["data"]["AWE_SITE"] == site
        ns = one(objs, "Namespace", f"awe-{site}")
        assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


def test_a_broken_manifest_is_rejected(rendered: dict[str, list[Obj]]) -> None:
    deployment = one(objects(rendered, "site-a"), "Deployment", "catalog")
    bad = copy.deepcopy(deployment)
    bad["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(bad)
    unknown = copy.deepcopy(deployment)
    unknown["spec"]["template"]["spec"]["containers"][0]["colour"] = "blue"
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(unknown)


# -- pods ----------------------------------------------------------------------------------
@pytest.mark.parametrize("site", SITES)
def test_pods_are_locked_down(rendered: dict[str, list[Obj]], site: str) -> None:
    """Pod Security "restricted", own ServiceAccounts without tokens, limits everywhere."""
    objs = objects(rendered, site)
    accounts = {o["metadata"]["name"]: o for o in objs if o["kind"] == "ServiceAccount"}
    assert all(a["automountServiceAccountToken"] is False for a in accounts.values())
    names = set()
    for w, pod in pod_specs(objs):
        name = f"{w['kind']}/{w['metadata']['name']}"
        names.add(w["metadata"]["name"])
        assert pod["automountServiceAccountToken"] is False, name
        assert pod["serviceAccountName"] in accounts, name
        assert pod["enableServiceLinks"] is False, name
        sc = pod["securityContext"]
        assert sc["runAsNonRoot"] is True and sc["runAsUser"] > 0, name
        assert sc["seccompProfile"] == {"type": "RuntimeDefault"}, name
        assert not any(pod.get(k) for k in ("hostNetwork", "hostPID", "hostIPC")), name
        assert not any("hostPath" in v for v in pod.get("volumes", [])), name
        for c in pod["containers"]:
            csc = c["securityContext"]
            assert csc["allowPrivilegeEscalation"] is False, name
            assert csc["capabilities"] == {"drop": ["ALL"]}, name
            assert not csc.get("privileged"), name
            assert {"cpu", "memory"} <= set(c["resources"]["limits"]), name
        tokens = [s for v in pod.get("volumes", []) for s in v.get("projected", {})
                  .get("sources", []) if "serviceAccountToken" in s]
        # only the bootstrap Job talks to the Kubernetes API, with a token it mounts itself
        if w["metadata"]["name"] == "awe-bootstrap":
            assert tokens and tokens[0]["serviceAccountToken"]["expirationSeconds"] <= 3600
        else:
            assert not tokens, name
    assert names == WORKLOADS | {"awe-bootstrap"}
    assert {a for a in accounts} == names  # one account each, and no spare one


def _uvicorn_paths(command: list[str]) -> set[str]:
    """The paths the app that ``uvicorn <module>:<factory> --factory`` serves."""
    module, factory = command[1].split(":")
    app = getattr(importlib.import_module(module), factory)()
    return set(app.openapi()["paths"])


@pytest.mark.parametrize("site", SITES)
def test_every_process_has_a_real_probe(rendered: dict[str, list[Obj]], site: str) -> None:
    """HTTP services: paths their app serves; PostgreSQL: pg_isready over TCP; the relay and
    the workers: the probe script looking at their work. Never just an import."""
    probe_modes = {"awe_catalog.relay": "relay", "awe_compute.worker": "worker"}
    for w, pod in pod_specs(objects(rendered, site)):
        if w["kind"] == "Job":
            continue
        for c in pod["containers"]:
            name = f"{w['metadata']['name']}/{c['name']}"
            probes = {k: c[k] for k in ("livenessProbe", "readinessProbe") if k in c}
            assert len(probes) == 2, name
            command = c.get("command", [])
            for kind, probe in probes.items():
                if "exec" in probe:
                    argv = probe["exec"]["command"]
                    assert not (argv[0].startswith("python") and "-c" in argv), \
                        f"{name}: {kind} runs a Python one-liner"
                    if argv[0] == "python":
                        assert command[:2] == ["python", "-m"], name
                        mode = "live" if kind == "livenessProbe" else "ready"
                        assert argv[1:] == ["/opt/awe/scripts/awe_probe.py",
                                            probe_modes[command[2]], mode], name
                    else:
                        assert argv[:3] == ["pg_isready", "-h", "127.0.0.1"], name
                elif "httpGet" in probe and command[:1] == ["uvicorn"]:
                    assert probe["httpGet"]["path"] in _uvicorn_paths(command), name
                    assert "startupProbe" in c, f"{name}: migrations run at start-up"
                    # liveness asks no dependency; readiness asks them all
                    wanted = "/livez" if kind == "livenessProbe" else "/readyz"
                    assert probe["httpGet"]["path"] == wanted, name
                else:
                    assert "httpGet" in probe or "tcpSocket" in probe, name
                    assert w["metadata"]["name"] in ("kafka", "minio"), name


@pytest.mark.parametrize("site", SITES)
def test_disruption_budgets(rendered: dict[str, list[Obj]], site: str) -> None:
    objs = objects(rendered, site)
    budgets = [o for o in objs if o["kind"] == "PodDisruptionBudget"]
    for w, _ in pod_specs(objs):
        if w["kind"] == "Job":
            continue
        labels = w["spec"]["template"]["metadata"]["labels"]
        mine = [b for b in budgets if selects(b["spec"]["selector"], labels)]
        assert len(mine) == 1, w["metadata"]["name"]
        spec = mine[0]["spec"]
        replicas = w["spec"].get("replicas")
        if replicas is None or replicas > 1:  # replicated (or scaled by KEDA)
            keeps_one = (spec.get("minAvailable", 0) >= 1
                         or spec.get("maxUnavailable", 10**6) < (replicas or 2))
            assert keeps_one, w["metadata"]["name"]
        if replicas is not None and replicas > 1:
            assert spec.get("minAvailable", 0) >= 1, w["metadata"]["name"]


# -- configuration -------------------------------------------------------------------------
@pytest.mark.parametrize("site", SITES)
def test_references_resolve(rendered: dict[str, list[Obj]], site: str) -> None:
    """$(VAR) only after VAR (Kubernetes leaves the text as it is otherwise); Secrets and
    ConfigMaps named exist or are the operator's; keys are the ones documented."""
    objs = objects(rendered, site)
    config = one(objs, "ConfigMap", "awe-config")["data"]
    maps = {o["metadata"]["name"] for o in objs if o["kind"] == "ConfigMap"}
    boot = script("awe_bootstrap")
    wanted: dict[str, set[str]] = {"awe-secrets": OPERATOR_KEYS,
                                   "awe-service-tokens": set(boot.SERVICES),
                                   "awe-peer-tokens": {SITES[site]}}
    used: dict[str, set[str]] = {k: set() for k in wanted}
    for w, pod in pod_specs(objs):
        for v in pod.get("volumes", []):
            if "configMap" in v:
                assert v["configMap"]["name"] in maps, w["metadata"]["name"]
        for c in pod["containers"]:
            name = f"{w['metadata']['name']}/{c['name']}"
            for source in c.get("envFrom", []):
                assert "secretRef" not in source, f"{name}: each secret key by name only"
                assert source["configMapRef"]["name"] == "awe-config", name
            defined: set[str] = set()
            for e in c.get("env", []):
                for var in re.findall(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", e.get("value", "")):
                    assert var in defined, f"{name}: {e['name']} uses $({var}) before it"
                defined.add(e["name"])
                ref = e.get("valueFrom", {})
                if "secretKeyRef" in ref:
                    s = ref["secretKeyRef"]
                    assert s["name"] in wanted, name
                    used[s["name"]].add(s["key"])
                if "configMapKeyRef" in ref:
                    assert ref["configMapKeyRef"]["key"] in config, name
    assert used == wanted
    secrets = {o["metadata"]["name"]: o for o in objs if o["kind"] == "Secret"}
    assert set(secrets) == {"awe-service-tokens", "awe-peer-tokens"}  # awe-secrets: operator
    assert not any(s.get("data") or s.get("stringData") for s in secrets.values())
    readme = (K8S / "README.md").read_text()
    assert all(key in readme for key in OPERATOR_KEYS)


def test_no_default_credentials(rendered: dict[str, list[Obj]]) -> None:
    for site in SITES:
        text = yaml.safe_dump_all(objects(rendered, site))
        assert "change-me" not in text and "minioadmin" not in text


@pytest.mark.parametrize("site", SITES)
def test_topics_from_configuration(rendered: dict[str, list[Obj]], site: str,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Replication factor and partitions come from awe-config, for the services' topics (as
    their settings read them) and for the broker's own defaults."""
    from awe_catalog.config import CatalogSettings

    objs = objects(rendered, site)
    config = one(objs, "ConfigMap", "awe-config")["data"]
    for key, value in config.items():
        monkeypatch.setenv(key, value)
    assert KafkaSettings().replication_factor == int(config["AWE_KAFKA_REPLICATION_FACTOR"])
    assert CatalogSettings().changes_partitions == 1  # the changelog's order
    assert ComputeSettings().job_partitions == int(config["AWE_COMPUTE_JOB_PARTITIONS"])
    kafka = env(container(objs, "StatefulSet", "kafka"))
    for name, key in (("KAFKA_DEFAULT_REPLICATION_FACTOR", "AWE_KAFKA_REPLICATION_FACTOR"),
                      ("KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR", "AWE_KAFKA_REPLICATION_FACTOR"),
                      ("KAFKA_MIN_INSYNC_REPLICAS", "AWE_KAFKA_MIN_INSYNC_REPLICAS")):
        assert kafka[name]["valueFrom"]["configMapKeyRef"] == {"name": "awe-config",
                                                               "key": key}
    assert (int(config["AWE_KAFKA_MIN_INSYNC_REPLICAS"])
            <= int(config["AWE_KAFKA_REPLICATION_FACTOR"]))


@pytest.mark.parametrize("site", SITES)
def test_workers_scale_on_kafka_lag(rendered: dict[str, list[Obj]], site: str) -> None:
    objs = objects(rendered, site)
    scaled = one(objs, "ScaledObject", "compute-worker")
    spec = scaled["spec"]
    assert spec["scaleTargetRef"]["name"] == "compute-worker"
    assert "replicas" not in one(objs, "Deployment", "compute-worker")["spec"]  # KEDA's
    partitions = int(one(objs, "ConfigMap", "awe-config")["data"]["AWE_COMPUTE_JOB_PARTITIONS"])
    assert 1 <= spec["minReplicaCount"] <= spec["maxReplicaCount"] <= partitions
    [trigger] = spec["triggers"]
    assert trigger["type"] == "kafka"
    meta = trigger["metadata"]
    assert meta["topic"] == topic(site, "compute.jobs")
    assert meta["consumerGroup"] == f"awe-compute-{site}"  # as awe_compute.worker joins
    # the broker as it advertises itself, which the KEDA operator resolves from its namespace
    assert meta["bootstrapServers"] == f"kafka.awe-{site}.svc:9092"
    advertised = env(container(objs, "StatefulSet", "kafka"))["KAFKA_ADVERTISED_LISTENERS"]
    assert advertised["value"].replace("$(POD_NAMESPACE)", f"awe-{site}") == \
        f"PLAINTEXT://{meta['bootstrapServers']}"
    assert int(meta["lagThreshold"]) >= 1
    assert meta["allowIdleConsumers"] == "false"


# -- bootstrap -----------------------------------------------------------------------------
@pytest.mark.parametrize("site", SITES)
def test_bootstrap_job(rendered: dict[str, list[Obj]], site: str) -> None:
    objs = objects(rendered, site)
    ns = f"awe-{site}"
    job = one(objs, "Job", "awe-bootstrap")
    pod = job["spec"]["template"]["spec"]
    assert pod["restartPolicy"] == "Never" and pod["serviceAccountName"] == "awe-bootstrap"
    [c] = pod["containers"]
    assert c["command"] == ["python", "/opt/awe/scripts/awe_bootstrap.py"]
    variables = env(c)
    assert {f"AWE_{db.upper()}_DATABASE_URL" for db in script("awe_bootstrap").DATABASES} \
        | {"AWE_CATALOG_ADMIN_TOKEN", "POD_NAMESPACE"} <= set(variables)
    assert json.loads(variables["AWE_BOOTSTRAP_PEERS"]["value"]) == [
        {"site": SITES[site], "namespace": f"awe-{SITES[site]}"}]
    # what it runs is what the tests run
    [scripts] = [o for o in objs if o["kind"] == "ConfigMap"
                 and o["metadata"]["name"].startswith("awe-scripts")]
    for name in ("awe_bootstrap.py", "awe_probe.py"):
        assert scripts["data"][name] == (K8S / "base" / "scripts" / name).read_text()
    # it may get and patch its one Secret, nothing else
    role = one(objs, "Role", "awe-bootstrap")
    assert role["rules"] == [{"apiGroups": [""], "resources": ["secrets"],
                              "resourceNames": ["awe-service-tokens"],
                              "verbs": ["get", "patch"]}]
    binding = one(objs, "RoleBinding", "awe-bootstrap")
    assert binding["roleRef"]["name"] == "awe-bootstrap"
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "awe-bootstrap",
                                    "namespace": ns}]


def test_each_site_lets_the_other_write_its_peer_token(rendered: dict[str, list[Obj]]) -> None:
    for site, peer in SITES.items():
        objs = objects(rendered, site)
        role = one(objs, "Role", "awe-peer-tokens-writer")
        assert role["rules"] == [{"apiGroups": [""], "resources": ["secrets"],
                                  "resourceNames": ["awe-peer-tokens"],
                                  "verbs": ["get", "patch"]}]
        binding = one(objs, "RoleBinding", "awe-peer-tokens-writer")
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "awe-bootstrap",
                                        "namespace": f"awe-{peer}"}]
        one(objs, "Secret", "awe-peer-tokens")


# -- federation ----------------------------------------------------------------------------
def _peer_token_var(c: Obj, token: str, peer: str) -> None:
    """``token`` is $(VAR) of an env var, defined before, from awe-peer-tokens[peer]."""
    match = re.fullmatch(r"\$\((\w+)\)", token)
    assert match, token
    ref = env(c)[match[1]]["valueFrom"]["secretKeyRef"]
    assert ref == {"name": "awe-peer-tokens", "key": peer}


def test_sites_federate_out_of_the_box(rendered: dict[str, list[Obj]]) -> None:
    from awe_federation.config import PeerSite
    from awe_storage.config import Peer

    for site, peer in SITES.items():
        objs, theirs = objects(rendered, site), objects(rendered, peer)
        fed = container(objs, "Deployment", "federation")
        [p] = json.loads(env(fed)["AWE_FEDERATION_PEERS"]["value"])
        PeerSite.model_validate(p)  # what the federation service reads
        assert p["site"] == peer
        assert p["catalog_url"] == f"http://catalog.awe-{peer}.svc:8000"
        assert p["kafka_bootstrap_servers"] == f"kafka.awe-{peer}.svc:9092"
        _peer_token_var(fed, p["token"], peer)
        storage = container(objs, "Deployment", "storage")
        [s] = json.loads(env(storage)["AWE_STORAGE_PEERS"]["value"])
        Peer.model_validate(s)
        assert (s["site"], s["url"]) == (peer, f"http://storage.awe-{peer}.svc:8000")
        _peer_token_var(storage, s["token"], peer)
        # those addresses exist over there: the Services, and the broker advertises itself so
        for name, port in (("catalog", 8000), ("storage", 8000), ("kafka", 9092)):
            assert port in [x["port"] for x in one(theirs, "Service", name)["spec"]["ports"]]
        listeners = env(container(theirs, "StatefulSet", "kafka"))["KAFKA_ADVERTISED_LISTENERS"]
        assert listeners["value"].replace("$(POD_NAMESPACE)", f"awe-{peer}") == \
            f"PLAINTEXT://{p['kafka_bootstrap_servers']}"


# -- network policies ----------------------------------------------------------------------
def selects(selector: Obj, labels: dict[str, str]) -> bool:
    """Does a label selector (matchLabels, matchExpressions) select these labels?"""
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for e in selector.get("matchExpressions", []):
        present, value = e["key"] in labels, labels.get(e["key"])
        match e["operator"]:
            case "In":
                ok = present and value in e["values"]
            case "NotIn":
                ok = not present or value not in e["values"]
            case "Exists":
                ok = present
            case "DoesNotExist":
                ok = not present
            case other:
                raise AssertionError(f"unknown operator {other}")
        if not ok:
            return False
    return True


@dataclass(frozen=True)
class Pod:
    namespace: str | None  # None: outside the cluster
    labels: tuple[tuple[str, str], ...] = ()

    @property
    def label_map(self) -> dict[str, str]:
        return dict(self.labels)


def _peer_matches(peer: Obj, policy_ns: str, pod: Pod) -> bool:
    if "ipBlock" in peer:
        return pod.namespace is None
    if pod.namespace is None:
        return False
    if "namespaceSelector" in peer:
        ns_ok = selects(peer["namespaceSelector"],
                        {"kubernetes.io/metadata.name": pod.namespace})
    else:
        ns_ok = pod.namespace == policy_ns
    return ns_ok and selects(peer.get("podSelector", {}), pod.label_map)


def _allowed(policies: list[Obj], direction: str, subject: Pod, other: Pod, port: int,
             protocol: str) -> bool:
    if subject.namespace is None:
        return True  # no policy outside the cluster
    rules_key, peers_key = ("ingress", "from") if direction == "Ingress" else ("egress", "to")
    applying = []
    for p in policies:
        spec = p["spec"]
        types = spec.get("policyTypes") or (["Ingress"] + (["Egress"] if "egress" in spec
                                                          else []))
        if (p["metadata"]["namespace"] == subject.namespace and direction in types
                and selects(spec["podSelector"], subject.label_map)):
            applying.append(p)
    if not applying:
        return True
    for p in applying:
        for rule in p["spec"].get(rules_key, []):
            peers_ok = not rule.get(peers_key) or any(
                _peer_matches(x, p["metadata"]["namespace"], other) for x in rule[peers_key])
            ports_ok = not rule.get("ports") or any(
                x.get("port") == port and x.get("protocol", "TCP") == protocol
                for x in rule["ports"])
            if peers_ok and ports_ok:
                return True
    return False


def connects(policies: list[Obj], src: Pod, dst: Pod, port: int, protocol: str = "TCP") -> bool:
    return (_allowed(policies, "Egress", src, dst, port, protocol)
            and _allowed(policies, "Ingress", dst, src, port, protocol))


def test_network_policies(rendered: dict[str, list[Obj]]) -> None:
    everything = [o for site in SITES for o in objects(rendered, site)]
    policies = [o for o in everything if o["kind"] == "NetworkPolicy"]
    pods = {(o["metadata"]["namespace"], o["metadata"]["name"]):
            Pod(o["metadata"]["namespace"],
                tuple(sorted(o["spec"]["template"]["metadata"]["labels"].items())))
            for o in everything if o["kind"] in ("Deployment", "StatefulSet", "Job")}

    def at(site: str, name: str) -> Pod:
        return pods[(f"awe-{site}", name)]

    outside = Pod(None)
    dns = Pod("kube-system", (("k8s-app", "kube-dns"),))
    keda = Pod("keda", (("app", "keda-operator"),))
    for site, peer in SITES.items():
        def ok(src: Pod, dst: Pod, port: int) -> None:
            assert connects(policies, src, dst, port), (src, dst, port)

        def no(src: Pod, dst: Pod, port: int) -> None:
            assert not connects(policies, src, dst, port), (src, dst, port)

        for name in {n for (ns, n) in pods if ns == f"awe-{site}"}:
            assert connects(policies, at(site, name), dns, 53, "UDP"), name
            no(at(site, name), outside, 80)  # no other way out
        for user in ("catalog", "catalog-relay", "lineage", "federation", "compute",
                     "compute-worker", "awe-bootstrap"):
            ok(at(site, user), at(site, "postgres"), 5432)
        for user in ("catalog-relay", "storage", "lineage", "compute", "compute-worker"):
            ok(at(site, user), at(site, "kafka"), 9092)
        for user in ("storage", "lineage", "federation", "compute", "compute-worker",
                     "awe-bootstrap"):
            ok(at(site, user), at(site, "catalog"), 8000)
        ok(at(site, "compute-worker"), at(site, "storage"), 8000)
        for api in ("catalog", "storage", "lineage", "compute"):  # as the signed-in user
            ok(at(site, "portal"), at(site, api), 8000)
        ok(outside, at(site, "portal"), 8000)
        no(at(site, "portal"), at(site, "postgres"), 5432)
        # the VO service: the catalog's database (read-only sessions), the catalog (who
        # calls) and storage (files for cutouts), and callers from anywhere
        for dep, port in (("postgres", 5432), ("catalog", 8000), ("storage", 8000)):
            ok(at(site, "vo"), at(site, dep), port)
        ok(outside, at(site, "vo"), 8000)
        no(at(site, "vo"), at(site, "kafka"), 9092)
        ok(at(site, "storage"), at(site, "minio"), 9000)
        ok(at(site, "awe-bootstrap"), outside, 443)  # the Kubernetes API
        for api in ("catalog", "storage", "lineage", "federation", "compute"):
            ok(outside, at(site, api), 8000)
        ok(keda, at(site, "kafka"), 9092)
        # the peer: federation follows its catalog and broker, storage fetches its files
        ok(at(site, "federation"), at(peer, "catalog"), 8000)
        ok(at(site, "federation"), at(peer, "kafka"), 9092)
        ok(at(site, "storage"), at(peer, "storage"), 8000)
        # and nothing else
        for svc, port in (("postgres", 5432), ("kafka", 9092), ("minio", 9000)):
            no(outside, at(site, svc), port)
            no(at(peer, "catalog"), at(site, svc), port)
        no(at(site, "storage"), at(site, "postgres"), 5432)
        no(at(site, "catalog"), at(site, "minio"), 9000)
        no(at(site, "catalog"), at(site, "kafka"), 9092)
        no(at(site, "compute-worker"), at(site, "minio"), 9000)
        no(at(site, "catalog"), outside, 443)
        no(at(peer, "storage"), at(site, "kafka"), 9092)
        no(at(site, "lineage"), at(peer, "catalog"), 8000)
        no(outside, at(site, "catalog-relay"), 8000)
        for process in ("catalog-relay", "compute-worker"):  # their metrics, for a scraper
            ok(outside, at(site, process), 9100)
        no(outside, at(site, "compute-worker"), 8000)


# -- the scripts: unit -------------------------------------------------------------------
def test_relay_probe_judges_progress() -> None:
    probe = script("awe_probe")
    judge, Facts = probe.judge_relay, probe.RelayFacts
    up = Facts(database=True, broker=True, newest=10, cursor=10)
    ok, why, state = judge(up, {}, 100.0, 300, "live")
    assert ok and state == {"cursor": 10, "since": 100.0}
    waiting = Facts(database=True, broker=True, newest=15, cursor=10)
    assert judge(waiting, state, 350.0, 300, "live")[0]  # waiting, within the allowance
    ok, why, _ = judge(waiting, state, 400.0, 300, "live")
    assert not ok and "stalled: 5 changes wait" in why
    moved = Facts(database=True, broker=True, newest=15, cursor=12)
    ok, _, state2 = judge(moved, state, 400.0, 300, "live")
    assert ok and state2 == {"cursor": 12, "since": 400.0}
    broker_down = Facts(database=True, broker=False, newest=15, cursor=10)
    assert judge(broker_down, state, 400.0, 300, "live")[0]  # a restart would not help
    assert not judge(broker_down, state, 400.0, 300, "ready")[0]
    assert not judge(broker_down, {}, 0.0, 300, "ready")[0]
    db_down = Facts(database=False, broker=True)
    assert judge(db_down, state, 400.0, 300, "live") == (
        True, "the catalog's database does not answer", state)
    assert not judge(db_down, state, 400.0, 300, "ready")[0]


def test_worker_probe_judges_membership_and_jobs() -> None:
    probe = script("awe_probe")
    judge, Facts = probe.judge_worker, probe.WorkerFacts
    for working in (Facts(True, True, member=True), Facts(True, True, running=1),
                    Facts(False, False, running=1)):
        assert judge(working, {"idle_since": 1.0}, 1000.0, 300, "live")[:1] == (True,)
        assert judge(working, {}, 0.0, 300, "ready")[2] == {"idle_since": None}
    idle = Facts(True, True)
    ok, _, state = judge(idle, {}, 100.0, 300, "live")
    assert ok and state == {"idle_since": 100.0}  # a grace period first
    assert not judge(idle, state, 150.0, 300, "ready")[0]
    ok, why, _ = judge(idle, state, 400.0, 300, "live")
    assert not ok and "out of the consumer group" in why
    for down in (Facts(False, True), Facts(True, False)):
        assert judge(down, state, 400.0, 300, "live")[0]
        assert not judge(down, state, 400.0, 300, "ready")[0]


def test_probe_state_is_per_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    probe = script("awe_probe")
    monkeypatch.setattr(probe, "STATE_DIR", tmp_path)
    probe.save_state("relay", "123", {"cursor": 4, "since": 1.0})
    assert probe.load_state("relay", "123") == {"cursor": 4, "since": 1.0}
    assert probe.load_state("relay", "999") == {}  # a restarted container starts afresh
    assert probe.load_state("worker", "123") == {}
    assert probe.main(["relay"]) == 2


def test_probe_finds_members_by_address() -> None:
    probe = script("awe_probe")

    class Response:
        def to_object(self) -> Obj:
            return {"groups": [
                {"group": "awe-compute-site-a", "members": [
                    {"client_host": "/10.1.2.3"}, {"client_host": "/10.1.2.4"}]},
                {"group": "other", "members": [{"client_host": "/10.9.9.9"}]}]}

    assert probe.member_hosts([Response()], "awe-compute-site-a") == {"10.1.2.3", "10.1.2.4"}
    assert probe._address("/fd00:0:0:0:0:0:0:1") == probe._address("fd00::1")


def test_bootstrap_reads_its_settings() -> None:
    boot = script("awe_bootstrap")
    base = {"AWE_SITE": "site-a", "POD_NAMESPACE": "awe-site-a",
            "AWE_CATALOG_ADMIN_TOKEN": "t" * 20,
            **{f"AWE_{db.upper()}_DATABASE_URL": f"postgresql://awe:pw@postgres/awe_{db}"
               for db in boot.DATABASES},
            "AWE_BOOTSTRAP_PEERS": '[{"site": "site-b", "namespace": "awe-site-b"}]'}
    config = boot.Config.from_env(base)
    assert config.peers == (boot.Peer("site-b", "awe-site-b"),)
    assert config.catalog_url == "http://catalog:8000" and config.namespace == "awe-site-a"
    with pytest.raises(boot.BootstrapError, match="AWE_COMPUTE_DATABASE_URL"):
        boot.Config.from_env({k: v for k, v in base.items() if "COMPUTE" not in k})
    with pytest.raises(boot.BootstrapError, match="AWE_BOOTSTRAP_PEERS"):
        boot.Config.from_env({**base, "AWE_BOOTSTRAP_PEERS": '[{"site": "x"}]'})
    with pytest.raises(boot.BootstrapError, match="database name"):
        boot._server_and_name("postgresql://awe@postgres/bad-name;drop")
    assert boot._server_and_name("postgresql://a:b@h:5/awe_x?sslmode=require") == (
        "postgresql://a:b@h:5/postgres?sslmode=require", "awe_x")
    # outside a cluster it says what is missing, and fails
    assert boot.main({**base, "KUBERNETES_SERVICE_HOST": ""}) == 1


# -- the scripts against PostgreSQL and a catalog ------------------------------------------
class FakeKubernetes:
    """The Secrets part of the Kubernetes API, as the bootstrap uses it."""

    def __init__(self, secrets: dict[tuple[str, str], dict[str, str]]) -> None:
        self.secrets = secrets
        self.patches = 0

    def handle(self, request: httpx.Request) -> httpx.Response:
        assert request.headers["Authorization"] == "Bearer api-token"
        match = re.fullmatch(r"/api/v1/namespaces/([^/]+)/secrets/([^/]+)", request.url.path)
        assert match, request.url.path
        key = (match[1], match[2])
        if key not in self.secrets:
            return httpx.Response(404, json={"kind": "Status", "reason": "NotFound"})
        if request.method == "PATCH":
            assert request.headers["Content-Type"] == "application/merge-patch+json"
            assert request.url.params["fieldManager"] == "awe-bootstrap"
            data = json.loads(request.content)["data"]
            self.secrets[key].update({k: base64.b64decode(v).decode() for k, v in data.items()})
            self.patches += 1
        elif request.method != "GET":
            return httpx.Response(405)
        return httpx.Response(200, json={"kind": "Secret", "data": {
            k: base64.b64encode(v.encode()).decode() for k, v in self.secrets[key].items()}})


@pytest.fixture(scope="module")
def k8s_site(postgres: PostgresServer,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dict[str, str], str]]:
    """As a site starts: PostgreSQL made awe_catalog, the catalog runs on it (and applied
    its migrations); the other databases are the bootstrap's to make."""
    prefix = f"awe_k8s_{os.urandom(3).hex()}"
    urls = {db: postgres.url(f"{prefix}_{db}")
            for db in ("catalog", "lineage", "federation", "compute")}
    postgres.create_database(f"{prefix}_catalog")
    env = {**os.environ, "AWE_SITE": "site-a", "AWE_CATALOG_DATABASE_URL": urls["catalog"],
           "AWE_CATALOG_ADMIN_TOKEN": ADMIN_TOKEN, "AWE_CATALOG_LOG_LEVEL": "WARNING"}
    proc, url = start_service("k8s-catalog", "awe_catalog.main:create_app", env,
                              tmp_path_factory.mktemp("k8s"))
    try:
        yield urls, url
    finally:
        proc.stop()


async def _bootstrap(boot: ModuleType, config: Any, api: FakeKubernetes) -> Any:
    secrets = boot.Secrets(httpx.AsyncClient(transport=httpx.MockTransport(api.handle),
                                             base_url="https://kubernetes.test"),
                           lambda: "api-token")
    try:
        async with httpx.AsyncClient(base_url=config.catalog_url, timeout=30) as http:
            return await boot.bootstrap(config, secrets, http)
    finally:
        await secrets.aclose()


@pytest.mark.integration
async def test_bootstrap_makes_a_site_ready(k8s_site: tuple[dict[str, str], str]) -> None:
    boot = script("awe_bootstrap")
    urls, catalog_url = k8s_site
    api = FakeKubernetes({("awe-site-a", "awe-service-tokens"): {},
                          ("awe-site-b", "awe-peer-tokens"): {}})
    config = boot.Config(site="site-a", namespace="awe-site-a", database_urls=urls,
                         admin_token=ADMIN_TOKEN, catalog_url=catalog_url,
                         peers=(boot.Peer("site-b", "awe-site-b"),), wait_seconds=60)

    first = await _bootstrap(boot, config, api)
    made = {db: urls[db].rsplit("/", 1)[1] for db in urls}
    assert sorted(first.created) == sorted(made[db] for db in ("lineage", "federation",
                                                               "compute"))
    assert first.migrated["catalog"] == []  # the catalog applied its own at start-up
    assert all(first.migrated[db] for db in ("lineage", "federation", "compute"))
    for db, url in urls.items():
        conn = await asyncpg.connect(url)
        try:
            assert await conn.fetchval("SELECT count(*) FROM schema_migrations") >= 1, db
        finally:
            await conn.close()
    tokens = dict(api.secrets[("awe-site-a", "awe-service-tokens")])
    peer_token = api.secrets[("awe-site-b", "awe-peer-tokens")]["site-a"]
    assert set(tokens) == set(boot.SERVICES)
    async with httpx.AsyncClient(base_url=catalog_url) as http:
        for user, token in [*tokens.items(), ("peer-site-b", peer_token)]:
            me = (await http.get("/whoami", headers={"Authorization": f"Bearer {token}"})).json()
            assert (me["name"], me["is_service"], me["is_admin"]) == (user, True, False)

    # again: nothing to do, nothing changed
    second = await _bootstrap(boot, config, api)
    assert (second.created, second.tokens) == ([], [])
    assert all(v == [] for v in second.migrated.values())
    assert api.secrets[("awe-site-a", "awe-service-tokens")] == tokens

    # a token the catalog refuses is replaced; the others are kept
    api.secrets[("awe-site-a", "awe-service-tokens")]["lineage"] = "awe_never_issued_token"
    third = await _bootstrap(boot, config, api)
    assert third.tokens == ["awe-site-a/awe-service-tokens:lineage"]
    now = api.secrets[("awe-site-a", "awe-service-tokens")]
    assert now["lineage"] != tokens["lineage"]
    assert {k: v for k, v in now.items() if k != "lineage"} == \
        {k: v for k, v in tokens.items() if k != "lineage"}

    # a peer whose overlay is not applied: waited for, then a clear failure
    lonely = boot.Config(**{**config.__dict__, "peers": (boot.Peer("site-c", "awe-site-c"),),
                            "wait_seconds": 0.0})
    with pytest.raises(boot.BootstrapError, match="Secret awe-site-c/awe-peer-tokens"):
        await _bootstrap(boot, lonely, api)


@pytest.mark.integration
async def test_probes_read_the_real_tables(k8s_site: tuple[dict[str, str], str],
                                           tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    boot, probe = script("awe_bootstrap"), script("awe_probe")
    urls, _ = k8s_site
    await boot.create_databases(urls, 0.0)
    await boot.apply_migrations(urls)
    nowhere = f"127.0.0.1:{free_port()}"  # no broker there
    env = {"AWE_SITE": "site-a",
           "AWE_CATALOG_DATABASE_URL": urls["catalog"],
           "AWE_CATALOG_KAFKA_BOOTSTRAP_SERVERS": nowhere,
           "AWE_COMPUTE_DATABASE_URL": urls["compute"],
           "AWE_COMPUTE_KAFKA_BOOTSTRAP_SERVERS": nowhere}

    assert f"name = '{CURSOR}'" in probe.RELAY_QUERY  # the relay's own cursor
    before = await probe.relay_facts(env)
    assert before.database and not before.broker
    conn = await asyncpg.connect(urls["catalog"])
    try:
        await conn.execute(
            "INSERT INTO changes (seq, event_id, oid, kind, time, payload) VALUES "
            "($1, gen_random_uuid(), gen_random_uuid(), 'created', now(), '{}'::jsonb)",
            before.newest + 1)
        waiting = await probe.relay_facts(env)
        assert (waiting.newest, waiting.cursor) == (before.newest + 1, before.cursor)
        await conn.execute(
            "INSERT INTO outbox_cursor (name, last_seq) VALUES ('kafka', $1) "
            "ON CONFLICT (name) DO UPDATE SET last_seq = $1", waiting.newest)
        assert (await probe.relay_facts(env)).cursor == waiting.newest
    finally:
        await conn.close()

    idle = await probe.worker_facts(env)
    assert (idle.database, idle.broker, idle.member, idle.running) == (True, False, False, 0)
    # a job claimed under the name a worker in this pod gives itself
    worker = Worker(ComputeSettings(), None, None)  # type: ignore[arg-type]
    assert worker.name.split(":")[0] == socket.gethostname()
    conn = await asyncpg.connect(urls["compute"])
    try:
        await conn.execute(
            "INSERT INTO jobs (id, key, cls, chip, night, product, status, submitted_by, "
            "worker) VALUES (gen_random_uuid(), $1, 'BiasFrame', 'ccd50', '2003-02-14', "
            "gen_random_uuid(), 'running', 'test', $2)",
            f"k8s-probe-{os.urandom(3).hex()}", worker.name)
    finally:
        await conn.close()
    assert (await probe.worker_facts(env)).running == 1

    gone = {**env, "AWE_CATALOG_DATABASE_URL": f"postgresql://awe@{nowhere}/none"}
    assert not (await probe.relay_facts(gone)).database

    monkeypatch.setattr(probe, "STATE_DIR", tmp_path)
    assert await _run_main(probe, ["relay", "live"], env) == 0
    assert await _run_main(probe, ["relay", "ready"], env) == 1  # no broker
    assert await _run_main(probe, ["worker", "live"], env) == 0


@pytest.mark.integration
async def test_probe_asks_the_broker(broker: Broker) -> None:
    probe = script("awe_probe")
    servers = broker.bootstrap_servers
    group = f"awe-compute-k8s-{os.urandom(3).hex()}"
    assert await probe._broker(servers) == (True, False)
    assert await probe._broker(servers, group, "10.9.9.9") == (True, False)  # no members
    await ensure_topics(KafkaSettings(bootstrap_servers=servers), [f"{group}.jobs"], 2)
    consumer = make_consumer(KafkaSettings(bootstrap_servers=servers), f"{group}.jobs",
                             group_id=group)
    await consumer.start()
    try:
        await consumer.getmany(timeout_ms=1000)
        # a member now; tansu reports no client addresses, so any pod counts as one (Apache
        # Kafka reports them, and the probe compares with the pod's IP: member_hosts)
        assert await probe._broker(servers, group, "10.9.9.9") == (True, True)
    finally:
        await consumer.stop()


async def _run_main(probe: ModuleType, argv: list[str], env: dict[str, str]) -> int:
    """probe.main (which runs its own event loop) from a test that has one."""
    return int(await asyncio.to_thread(probe.main, argv, env))
