"""Pod behaviours chosen from Python: crash loops and image pull failures as
a kubelet reports them. Back-offs are time, so these tests follow the pod
with a watch (what a client of a real cluster does), not sleeps."""

import pytest
from kubernetes import client, watch
from kubernetes.client.rest import ApiException

from mockernetes import PodBehaviour


def pod(name, labels=None, image="ghcr.io/example/runtime:1.0", annotations=None):
    return client.V1Pod(
        metadata=client.V1ObjectMeta(name=name, labels=labels or {}, annotations=annotations),
        spec=client.V1PodSpec(restart_policy="Always",
                              containers=[client.V1Container(name="runtime", image=image)]))


def follow(name, until, timeout=30, resource_version=None):
    """The pod's states from a watch (from resource_version, else from its
    current state) until until(pod) holds."""
    core = client.CoreV1Api()
    seen = []
    w = watch.Watch()
    for event in w.stream(core.list_namespaced_pod, "default", field_selector=f"metadata.name={name}",
                          resource_version=resource_version, timeout_seconds=timeout):
        p = event["object"]
        seen.append(p)
        if until(p):
            w.stop()
            return seen
    raise AssertionError(f"pod {name}: condition not reached in {timeout}s; last status {seen[-1].status if seen else None}")


def container(p):
    return (p.status.container_statuses or [None])[0]


@pytest.mark.mockernetes(pod_behaviours=[PodBehaviour.crash_loop(
    exit_code=3, logs=["loading config", "fatal: no database"], backoff="50ms", labels={"app": "crashy"})])
def test_crash_loop(mock_k8s):
    core = client.CoreV1Api()
    core.create_namespaced_pod("default", pod("crashy", labels={"app": "crashy"}))
    seen = follow("crashy", lambda p: container(p) and container(p).restart_count >= 2
                  and container(p).state.waiting is not None)
    last = container(seen[-1])
    assert last.state.waiting.reason == "CrashLoopBackOff"
    assert last.last_state.terminated.exit_code == 3
    assert last.last_state.terminated.reason == "Error"
    assert last.ready is False
    assert seen[-1].status.phase == "Running"
    # restart_count only grows.
    counts = [container(p).restart_count for p in seen if container(p)]
    assert counts == sorted(counts)
    previous = core.read_namespaced_pod_log("crashy", "default", container="runtime", previous=True)
    assert previous.splitlines() == ["loading config", "fatal: no database"]
    # Other pods are not matched.
    core.create_namespaced_pod("default", pod("calm", labels={"app": "calm"}))
    calm = core.read_namespaced_pod("calm", "default")
    assert calm.status.phase == "Running" and container(calm).restart_count == 0


@pytest.mark.mockernetes(pod_behaviours=PodBehaviour.image_pull_failure(image="registry.invalid/*"))
def test_image_pull_failure(mock_k8s):
    core = client.CoreV1Api()
    created = core.create_namespaced_pod("default", pod("nopull", image="registry.invalid/app:1"))
    seen = follow("nopull", lambda p: container(p) and container(p).state.waiting
                  and container(p).state.waiting.reason == "ImagePullBackOff",
                  resource_version=created.metadata.resource_version)
    reasons = [container(p).state.waiting.reason for p in seen if container(p) and container(p).state.waiting]
    assert "ErrImagePull" in reasons and reasons.index("ErrImagePull") < reasons.index("ImagePullBackOff"), reasons
    assert all(p.status.phase == "Pending" for p in seen)
    assert any(e.reason == "Failed" for e in mock_k8s.events("default", involved_object="nopull"))


def test_annotations_and_set_pod_behaviours(mock_k8s):
    core = client.CoreV1Api()
    # The mockernetes.io/ annotations keep working.
    core.create_namespaced_pod("default", pod("oom", annotations={"mockernetes.io/oom-killed": "true",
                                                                  "mockernetes.io/restart-backoff": "1h"}))
    seen = follow("oom", lambda p: container(p) and container(p).last_state.terminated is not None)
    assert container(seen[-1]).last_state.terminated.reason == "OOMKilled"
    assert container(seen[-1]).last_state.terminated.exit_code == 137
    # Rules changed mid-test apply to pods created afterwards.
    mock_k8s.set_pod_behaviours(PodBehaviour.never_ready(labels="tier=slow"),
                                PodBehaviour.with_logs(["hello", "world"], container="runtime"))
    core.create_namespaced_pod("default", pod("slow", labels={"tier": "slow"}))
    slow = core.read_namespaced_pod("slow", "default")
    assert slow.status.phase == "Running" and container(slow).ready is False
    assert core.read_namespaced_pod_log("slow", "default").splitlines() == ["hello", "world"]
    with pytest.raises(TypeError):
        mock_k8s.set_pod_behaviours("crash")
    # Bad rules are refused by the server, with its message.
    from mockernetes import MockernetesError
    with pytest.raises(MockernetesError, match="labels"):
        mock_k8s.set_pod_behaviours({"match": {"labels": "a in ("}, "behaviour": {}})
    with pytest.raises(ApiException):
        core.read_namespaced_pod("gone", "default")
