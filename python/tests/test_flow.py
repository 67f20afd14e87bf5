"""The first user's flow, as straight-line code against the real API: no
sleeps, no polling (settle-on-write answers each write once the cluster
has acted on it)."""

import json

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

RUNTIME_ID = "rt-1234"
NS = "sandboxes"
HTTPROUTE = dict(group="gateway.networking.k8s.io", version="v1", plural="httproutes")


def owned_by(deployment):
    return [client.V1OwnerReference(api_version="apps/v1", kind="Deployment", name=deployment.metadata.name,
                                    uid=deployment.metadata.uid, controller=False, block_owner_deletion=True)]


def create_sandbox(use_gateway):
    """What the service does per sandbox."""
    core, apps, policy = client.CoreV1Api(), client.AppsV1Api(), client.PolicyV1Api()
    labels = {"runtime_id": RUNTIME_ID}
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=NS)))
    core.create_namespaced_service_account(NS, client.V1ServiceAccount(
        metadata=client.V1ObjectMeta(name=f"sandbox-{RUNTIME_ID}", labels=labels)))
    deployment = apps.create_namespaced_deployment(NS, client.V1Deployment(
        metadata=client.V1ObjectMeta(name=f"sandbox-{RUNTIME_ID}", labels=labels),
        spec=client.V1DeploymentSpec(
            replicas=1,
            selector=client.V1LabelSelector(match_labels=labels),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=labels),
                spec=client.V1PodSpec(
                    service_account_name=f"sandbox-{RUNTIME_ID}",
                    containers=[client.V1Container(
                        name="runtime", image="ghcr.io/example/runtime:1.0",
                        ports=[client.V1ContainerPort(container_port=8080)],
                        volume_mounts=[client.V1VolumeMount(name="workspace", mount_path="/workspace")])],
                    volumes=[client.V1Volume(name="workspace", persistent_volume_claim=client.V1PersistentVolumeClaimVolumeSource(
                        claim_name=f"workspace-{RUNTIME_ID}"))])))))
    owner = owned_by(deployment)
    policy.create_namespaced_pod_disruption_budget(NS, client.V1PodDisruptionBudget(
        metadata=client.V1ObjectMeta(name=f"sandbox-{RUNTIME_ID}", owner_references=owner),
        spec=client.V1PodDisruptionBudgetSpec(min_available=1, selector=client.V1LabelSelector(match_labels=labels))))
    core.create_namespaced_service(NS, client.V1Service(
        metadata=client.V1ObjectMeta(name=f"sandbox-{RUNTIME_ID}", owner_references=owner),
        spec=client.V1ServiceSpec(selector=labels, ports=[client.V1ServicePort(port=80, target_port=8080)])))
    core.create_namespaced_persistent_volume_claim(NS, client.V1PersistentVolumeClaim(
        metadata=client.V1ObjectMeta(name=f"workspace-{RUNTIME_ID}", owner_references=owner),
        spec=client.V1PersistentVolumeClaimSpec(access_modes=["ReadWriteOnce"],
                                                resources=client.V1VolumeResourceRequirements(requests={"storage": "1Gi"}))))
    if use_gateway:
        client.CustomObjectsApi().create_namespaced_custom_object(namespace=NS, body={
            "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
            "metadata": {"name": f"sandbox-{RUNTIME_ID}", "ownerReferences": [client.ApiClient().sanitize_for_serialization(o) for o in owner]},
            "spec": {"hostnames": [f"{RUNTIME_ID}.sandboxes.example"],
                     "rules": [{"backendRefs": [{"name": f"sandbox-{RUNTIME_ID}", "port": 80}]}]},
        }, **HTTPROUTE)
    else:
        backend = client.V1IngressBackend(service=client.V1IngressServiceBackend(
            name=f"sandbox-{RUNTIME_ID}", port=client.V1ServiceBackendPort(number=80)))
        rule = client.V1IngressRule(host=f"{RUNTIME_ID}.sandboxes.example", http=client.V1HTTPIngressRuleValue(
            paths=[client.V1HTTPIngressPath(path="/", path_type="Prefix", backend=backend)]))
        client.NetworkingV1Api().create_namespaced_ingress(NS, client.V1Ingress(
            metadata=client.V1ObjectMeta(name=f"sandbox-{RUNTIME_ID}", owner_references=owner),
            spec=client.V1IngressSpec(rules=[rule])))
    return deployment


def not_found(call, *args, **kwargs):
    with pytest.raises(ApiException) as e:
        call(*args, **kwargs)
    assert e.value.status == 404, f"{call.__name__}{args}: {e.value.status} {e.value.reason}"
    return True


@pytest.mark.parametrize("use_gateway", [False, True], ids=["ingress", "httproute"])
def test_sandbox_lifecycle(mock_k8s, use_gateway):
    core, apps, policy, net = client.CoreV1Api(), client.AppsV1Api(), client.PolicyV1Api(), client.NetworkingV1Api()
    custom = client.CustomObjectsApi()
    create_sandbox(use_gateway)

    pods = core.list_namespaced_pod(NS, label_selector=f"runtime_id={RUNTIME_ID}").items
    assert len(pods) == 1
    pod = pods[0]
    assert pod.status.phase == "Running"
    assert pod.spec.node_name
    (status,) = pod.status.container_statuses
    assert status.name == "runtime"
    assert status.ready is True
    assert status.state.running is not None and status.state.running.started_at is not None
    assert status.state.waiting is None
    assert status.restart_count == 0
    assert status.last_state.terminated is None

    d = apps.read_namespaced_deployment_status(f"sandbox-{RUNTIME_ID}", NS)
    assert d.status.ready_replicas == 1 and d.status.available_replicas == 1
    pvc = core.read_namespaced_persistent_volume_claim(f"workspace-{RUNTIME_ID}", NS)
    assert pvc.status.phase == "Bound"

    log = core.read_namespaced_pod_log(pod.metadata.name, NS, container="runtime")
    assert "Starting runtime (image ghcr.io/example/runtime:1.0)" in log
    with pytest.raises(ApiException) as e:
        core.read_namespaced_pod_log(pod.metadata.name, NS, container="runtime", previous=True)
    assert e.value.status == 400
    assert json.loads(e.value.body)["message"].startswith('previous terminated container "runtime" in pod')

    # Cascading deletion: the default (background) propagation; at once
    # every dependent is gone.
    rs_names = [rs.metadata.name for rs in apps.list_namespaced_replica_set(NS).items]
    assert len(rs_names) == 1
    apps.delete_namespaced_deployment(f"sandbox-{RUNTIME_ID}", NS)
    name = f"sandbox-{RUNTIME_ID}"
    assert core.list_namespaced_pod(NS, label_selector=f"runtime_id={RUNTIME_ID}").items == []
    assert not_found(core.read_namespaced_pod, pod.metadata.name, NS)
    assert not_found(apps.read_namespaced_replica_set, rs_names[0], NS)
    assert not_found(policy.read_namespaced_pod_disruption_budget, name, NS)
    assert not_found(core.read_namespaced_service, name, NS)
    assert not_found(core.read_namespaced_persistent_volume_claim, f"workspace-{RUNTIME_ID}", NS)
    if use_gateway:
        assert not_found(custom.get_namespaced_custom_object, name=name, namespace=NS, **HTTPROUTE)
    else:
        assert not_found(net.read_namespaced_ingress, name, NS)

    # The explicit deletes: the ServiceAccount is there (200), what the
    # garbage collector took is 404, as on a real cluster.
    deleted = core.delete_namespaced_service_account(name, NS)
    assert deleted.metadata.name == name
    assert not_found(core.delete_namespaced_service, name, NS)
    assert not_found(core.delete_namespaced_persistent_volume_claim, f"workspace-{RUNTIME_ID}", NS)

    # What the test's own code asked for, once.
    deletes = mock_k8s.requests(verb="delete", resource="deployments", namespace=NS)
    assert [(r.name, r.code) for r in deletes] == [(name, 200)]
