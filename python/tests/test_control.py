"""Faults, request history, snapshots and settle from Python."""

import datetime
import json
import time

import pytest
import yaml
from kubernetes import client, watch
from kubernetes.client.rest import ApiException

from mockernetes import MockernetesError


def cm(name, data=None):
    return client.V1ConfigMap(metadata=client.V1ObjectMeta(name=name), data=data or {"n": "0"})


def deployment(name):
    labels = {"app": name}
    return client.V1Deployment(
        metadata=client.V1ObjectMeta(name=name),
        spec=client.V1DeploymentSpec(replicas=1, selector=client.V1LabelSelector(match_labels=labels),
                                     template=client.V1PodTemplateSpec(
                                         metadata=client.V1ObjectMeta(labels=labels),
                                         spec=client.V1PodSpec(containers=[client.V1Container(name="c", image="nginx")]))))


def increment(core, name):
    """Read-modify-write with a retry on conflict, as controllers do."""
    attempts = 0
    while True:
        attempts += 1
        obj = core.read_namespaced_config_map(name, "default")
        obj.data["n"] = str(int(obj.data["n"]) + 1)
        try:
            core.replace_namespaced_config_map(name, "default", obj)
            return attempts
        except ApiException as e:
            if e.status != 409:
                raise


def test_faults(mock_k8s):
    core = client.CoreV1Api()
    core.create_namespaced_config_map("default", cm("counter"))

    # A 409 on the first update: the retry succeeds, the message names the
    # object as upstream's does.
    mock_k8s.add_fault(verb="update", resource="configmaps", name="counter", code=409, times=1)
    assert increment(core, "counter") == 2
    assert core.read_namespaced_config_map("counter", "default").data["n"] == "1"
    (rule,) = mock_k8s.faults()
    assert rule["hits"] == 1
    mock_k8s.clear_faults()

    mock_k8s.add_fault(verb="update", resource="configmaps", code=409, times=1)
    obj = core.read_namespaced_config_map("counter", "default")
    with pytest.raises(ApiException) as e:
        core.replace_namespaced_config_map("counter", "default", obj)
    assert e.value.status == 409 and e.value.reason == "Conflict"
    assert json.loads(e.value.body)["message"].startswith('Operation cannot be fulfilled on configmaps "counter"')

    # 429 with Retry-After, as API priority and fairness sends it: the
    # client's HTTP layer (urllib3) waits as told and asks again.
    mock_k8s.add_fault(verb="list", resource="pods", code=429, retry_after=1, times=1)
    start = time.monotonic()
    assert core.list_namespaced_pod("default").items == []
    assert time.monotonic() - start >= 1
    assert [r.code for r in mock_k8s.requests(verb="list", resource="pods")] == [429, 200]

    # A 500 on deployments in one namespace only, and latency.
    mock_k8s.add_fault(verb="create", resource="deployments.apps", namespace="default", code=500, message="etcd is on fire")
    with pytest.raises(ApiException) as e:
        client.AppsV1Api().create_namespaced_deployment("default", deployment("x"))
    assert e.value.status == 500 and "etcd is on fire" in e.value.body
    mock_k8s.add_fault(verb="get", resource="secrets", latency=0.2)
    start = time.monotonic()
    with pytest.raises(ApiException):
        core.read_namespaced_secret("absent", "default")
    assert time.monotonic() - start >= 0.2

    # Bad rules are refused with the server's message.
    with pytest.raises(MockernetesError, match="code"):
        mock_k8s.add_fault(verb="get", code=99)
    assert len(mock_k8s.faults()) == 4, "a refused rule changes nothing"


def test_watch_ended_by_a_fault(mock_k8s):
    core = client.CoreV1Api()
    for i in range(5):
        core.create_namespaced_config_map("default", cm(f"w{i}"))
    mock_k8s.add_fault(verb="watch", resource="configmaps", end_watch_after=3, times=1)
    events = [e for e in watch.Watch().stream(core.list_namespaced_config_map, "default", timeout_seconds=20)]
    assert len(events) == 3, "the watch ends after 3 events"
    assert all(e["type"] == "ADDED" for e in events)


def test_request_history(mock_k8s):
    apps = client.AppsV1Api()
    apps.create_namespaced_deployment("default", deployment("web"))
    apps.delete_namespaced_deployment("web", "default", body=client.V1DeleteOptions(propagation_policy="Background"))
    deletes = mock_k8s.requests(verb="delete", resource="deployments")
    assert len(deletes) == 1
    (d,) = deletes
    assert (d.name, d.namespace, d.api_group, d.code) == ("web", "default", "apps", 200)
    assert d.user_agent.startswith("OpenAPI-Generator/")
    assert not d.internal
    # The controllers' own requests are there when asked for.
    internal = mock_k8s.requests(internal=True, resource="replicasets")
    assert internal and all(r.internal for r in internal)
    assert {r.verb for r in mock_k8s.requests(resource="deployments.apps")} == {"create", "delete"}
    mock_k8s.clear_requests()
    assert mock_k8s.requests() == []
    with pytest.raises(MockernetesError, match="since"):
        mock_k8s.requests(since="yesterday")


@pytest.mark.mockernetes(history="bodies")
def test_request_bodies(mock_k8s):
    client.CoreV1Api().create_namespaced_config_map("default", cm("with-body", {"secret": "sauce"}))
    (create,) = mock_k8s.requests(verb="create", resource="configmaps")
    assert '"sauce"' in create.body


def test_snapshot_restore_and_settle(mock_k8s):
    core = client.CoreV1Api()
    core.create_namespaced_config_map("default", cm("keep", {"v": "1"}))
    snap = mock_k8s.snapshot()
    docs = [d for d in yaml.safe_load_all(snap) if d]
    assert any(d["kind"] == "ConfigMap" and d["metadata"]["name"] == "keep" for d in docs)
    core.delete_namespaced_config_map("keep", "default")
    core.create_namespaced_config_map("default", cm("later"))
    mock_k8s.restore(snap)
    assert core.read_namespaced_config_map("keep", "default").data == {"v": "1"}
    with pytest.raises(ApiException):
        core.read_namespaced_config_map("later", "default")
    with pytest.raises(MockernetesError):
        mock_k8s.restore("kind: [not yaml")
    assert core.read_namespaced_config_map("keep", "default").data == {"v": "1"}
    mock_k8s.settle()
    mock_k8s.settle(timeout=0.5)


def test_events(mock_k8s):
    core = client.CoreV1Api()
    core.create_namespaced_pod("default", client.V1Pod(
        metadata=client.V1ObjectMeta(name="evented"),
        spec=client.V1PodSpec(containers=[client.V1Container(name="c", image="nginx:1.27")])))
    p = core.read_namespaced_pod("evented", "default")
    # Settle-on-write waited for the scheduler's and kubelet's events too.
    reasons = [e.reason for e in mock_k8s.events("default", involved_object=p)]
    assert reasons[:1] == ["Scheduled"] and "Started" in reasons, reasons
    assert reasons.index("Pulled") < reasons.index("Started")
    assert [e.reason for e in mock_k8s.events("default", involved_object="evented")] == reasons
    assert mock_k8s.events("default", involved_object={"metadata": {"name": "nothing"}}) == []


def test_events_order(mock_k8s):
    # Written in another order than made: events() orders by the instant
    # in the name (<object>.<hex nanoseconds>, as client-go's recorders
    # name them) within the timestamp's second, and by the last time
    # seen for an event aggregated later.
    core = client.CoreV1Api()
    second = datetime.datetime(2026, 12, 4, 12, 0, 0, tzinfo=datetime.timezone.utc)
    ns = int(second.timestamp()) * 10**9
    ref = client.V1ObjectReference(kind="Pod", namespace="default", name="ordered", uid="u-1")

    def core_event(reason, made_ns, last):
        core.create_namespaced_event("default", client.CoreV1Event(
            metadata=client.V1ObjectMeta(name=f"ordered.{made_ns:x}"), involved_object=ref, reason=reason,
            message=reason, type="Normal", first_timestamp=last, last_timestamp=last, count=1,
            source=client.V1EventSource(component="test")))
    core_event("Late", ns + 700_000_000, second)
    core_event("Aggregated", ns - 5 * 10**9, second + datetime.timedelta(seconds=1))
    core_event("Early", ns + 200_000_000, second)
    at = second + datetime.timedelta(microseconds=500_000)
    client.EventsV1Api().create_namespaced_event("default", client.EventsV1Event(
        metadata=client.V1ObjectMeta(name=f"ordered.{ns + 500_000_123:x}"), event_time=at,
        regarding=ref, reason="Middle", note="Middle", type="Normal", action="Test",
        reporting_controller="example.com/test", reporting_instance="test-1"))
    reasons = [e.reason for e in mock_k8s.events("default", involved_object="ordered")]
    assert reasons == ["Early", "Middle", "Late", "Aggregated"], reasons


@pytest.mark.mockernetes(history=False)
def test_without_history(mock_k8s):
    client.CoreV1Api().create_namespaced_config_map("default", cm("unrecorded"))
    with pytest.raises(MockernetesError, match="history=False"):
        mock_k8s.requests()
    assert mock_k8s._server.control.settings()["requestHistory"]["size"] == 1


def test_history_comes_back_after_history_false(mock_k8s):
    client.CoreV1Api().create_namespaced_config_map("default", cm("recorded"))
    assert [(r.resource, r.namespace) for r in mock_k8s.requests(verb="create")] == [("configmaps", "default")]
