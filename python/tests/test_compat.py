"""Tests in the style written for the earlier pure-Python mockernetes 0.1.0
(the same names, keyword calls, no configuration, exact counts in
"default"), limited to what a real cluster does: they run here unchanged."""

from kubernetes import client as k8s_client
from kubernetes.client.rest import ApiException

from mockernetes import MockKubernetes, mock_kubernetes, patch_kubernetes


def _pod(name, labels=None):
    return k8s_client.V1Pod(metadata=k8s_client.V1ObjectMeta(name=name, labels=labels),
                            spec=k8s_client.V1PodSpec(containers=[k8s_client.V1Container(name="test", image="nginx")]))


def test_context_manager():
    with mock_kubernetes() as mock_k8s:
        assert isinstance(mock_k8s, MockKubernetes)
        assert mock_k8s._is_active
    assert not mock_k8s._is_active


def test_pod_listing_with_labels():
    with mock_kubernetes():
        v1 = k8s_client.CoreV1Api()
        v1.create_namespaced_pod(namespace="default", body=_pod("pod1", {"app": "web"}))
        v1.create_namespaced_pod(namespace="default", body=_pod("pod2", {"app": "db"}))
        assert len(v1.list_namespaced_pod(namespace="default").items) == 2
        web = v1.list_namespaced_pod(namespace="default", label_selector="app=web").items
        assert [p.metadata.name for p in web] == ["pod1"]
        # Read again after the create: scheduled and running.
        assert v1.read_namespaced_pod(name="pod1", namespace="default").status.phase == "Running"


def test_service_creation():
    with mock_kubernetes():
        svc = k8s_client.CoreV1Api().create_namespaced_service(namespace="default", body=k8s_client.V1Service(
            metadata=k8s_client.V1ObjectMeta(name="test-service"),
            spec=k8s_client.V1ServiceSpec(selector={"app": "web"}, ports=[k8s_client.V1ServicePort(port=80, target_port=8080)])))
        assert svc.spec.type == "ClusterIP" and svc.spec.cluster_ip is not None


def test_errors():
    with mock_kubernetes():
        v1 = k8s_client.CoreV1Api()
        try:
            v1.read_namespaced_pod(name="nonexistent", namespace="default")
            raise AssertionError("no 404")
        except ApiException as e:
            assert e.status == 404 and e.reason == "Not Found"
        v1.create_namespaced_pod(namespace="default", body=_pod("dup"))
        try:
            v1.create_namespaced_pod(namespace="default", body=_pod("dup"))
            raise AssertionError("no 409")
        except ApiException as e:
            assert e.status == 409 and e.reason == "Conflict"


def test_initial_state_loading():
    state = {"namespaces": ["test-ns"],
             "pods": [{"metadata": {"name": "existing-pod", "namespace": "test-ns"},
                       "spec": {"containers": [{"name": "test", "image": "nginx"}]}}]}
    with mock_kubernetes(state):
        pod = k8s_client.CoreV1Api().read_namespaced_pod(name="existing-pod", namespace="test-ns")
        assert pod.metadata.name == "existing-pod" and pod.metadata.namespace == "test-ns"


@patch_kubernetes()
def test_with_decorator():
    assert k8s_client.CoreV1Api().list_namespaced_pod(namespace="default").items == []


def test_runtime_status_and_cascading_deletion_pattern():
    with mock_kubernetes():
        v1, apps, policy = k8s_client.CoreV1Api(), k8s_client.AppsV1Api(), k8s_client.PolicyV1Api()
        labels = {"app": "runtime", "runtime_id": "test-runtime-456"}
        d = apps.create_namespaced_deployment(namespace="default", body=k8s_client.V1Deployment(
            metadata=k8s_client.V1ObjectMeta(name="runtime-test-runtime-456", labels=labels),
            spec=k8s_client.V1DeploymentSpec(replicas=1, selector=k8s_client.V1LabelSelector(match_labels=labels),
                                             template=k8s_client.V1PodTemplateSpec(
                                                 metadata=k8s_client.V1ObjectMeta(labels=labels),
                                                 spec=k8s_client.V1PodSpec(containers=[k8s_client.V1Container(
                                                     name="runtime", image="test-image",
                                                     env=[k8s_client.V1EnvVar(name="RUNTIME_ID", value="test-runtime-456")])])))))
        owner = [k8s_client.V1OwnerReference(api_version="apps/v1", kind="Deployment", name=d.metadata.name, uid=d.metadata.uid)]
        pods = v1.list_namespaced_pod(namespace="default", label_selector="runtime_id=test-runtime-456").items
        assert len(pods) == 1
        assert pods[0].status.phase == "Running"
        (status,) = pods[0].status.container_statuses
        assert status.name == "runtime" and status.ready is True and status.restart_count == 0
        assert status.state.running is not None
        v1.create_namespaced_service(namespace="default", body=k8s_client.V1Service(
            metadata=k8s_client.V1ObjectMeta(name="runtime-svc", owner_references=owner),
            spec=k8s_client.V1ServiceSpec(selector=labels, ports=[k8s_client.V1ServicePort(name="http", port=80)])))
        v1.create_namespaced_persistent_volume_claim(namespace="default", body=k8s_client.V1PersistentVolumeClaim(
            metadata=k8s_client.V1ObjectMeta(name="runtime-pvc", owner_references=owner),
            spec=k8s_client.V1PersistentVolumeClaimSpec(access_modes=["ReadWriteOnce"], resources=k8s_client.V1VolumeResourceRequirements(
                requests={"storage": "10Gi"}))))
        policy.create_namespaced_pod_disruption_budget(namespace="default", body=k8s_client.V1PodDisruptionBudget(
            metadata=k8s_client.V1ObjectMeta(name="runtime-pdb", owner_references=owner),
            spec=k8s_client.V1PodDisruptionBudgetSpec(min_available=1, selector=k8s_client.V1LabelSelector(match_labels=labels))))
        assert v1.read_namespaced_persistent_volume_claim("runtime-pvc", "default").status.phase == "Bound"
        apps.delete_namespaced_deployment(name="runtime-test-runtime-456", namespace="default")
        for read in (lambda: v1.read_namespaced_service("runtime-svc", "default"),
                     lambda: v1.read_namespaced_persistent_volume_claim("runtime-pvc", "default"),
                     lambda: policy.read_namespaced_pod_disruption_budget("runtime-pdb", "default")):
            try:
                read()
                raise AssertionError("still there")
            except ApiException as e:
                assert e.status == 404
        assert v1.list_namespaced_pod(namespace="default", label_selector="runtime_id=test-runtime-456").items == []


def test_custom_objects_httproute():
    with mock_kubernetes():
        api = k8s_client.CustomObjectsApi()
        body = {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute", "metadata": {"name": "test-route"},
                "spec": {"rules": [{"backendRefs": [{"name": "svc", "port": 80}]}]}}
        api.create_namespaced_custom_object(group="gateway.networking.k8s.io", version="v1", namespace="default",
                                            plural="httproutes", body=body)
        got = api.get_namespaced_custom_object(group="gateway.networking.k8s.io", version="v1", namespace="default",
                                               plural="httproutes", name="test-route")
        assert got["metadata"]["name"] == "test-route"
