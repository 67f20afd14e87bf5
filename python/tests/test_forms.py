"""Every way to activate the mock, what each activation starts from, and
that the client's configuration is put back afterwards."""

import os
import unittest

import pytest
import yaml
from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException
from kubernetes.config import incluster_config, kube_config

from mockernetes import MockKubernetes, MockernetesError, mock_kubernetes, patch_kubernetes


def configmaps(namespace="default"):
    return sorted(cm.metadata.name for cm in client.CoreV1Api().list_namespaced_config_map(namespace).items
                  if cm.metadata.name != "kube-root-ca.crt")


def make_configmap(name, namespace="default", data=None):
    return client.CoreV1Api().create_namespaced_config_map(namespace, client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name=name), data=data or {"k": "v"}))


def outside_state():
    """What the mock changes while active, as seen from outside."""
    return (client.Configuration._default, os.environ.get("KUBECONFIG"), os.environ.get("KUBERNETES_SERVICE_HOST"),
            os.environ.get("KUBERNETES_SERVICE_PORT"), kube_config.KUBE_CONFIG_DEFAULT_LOCATION,
            config.KUBE_CONFIG_DEFAULT_LOCATION, incluster_config.SERVICE_TOKEN_FILENAME,
            incluster_config.SERVICE_CERT_FILENAME)


@mock_kubernetes
def test_bare_decorator():
    make_configmap("bare")
    assert configmaps() == ["bare"]


@mock_kubernetes(nodes=3)
def test_called_decorator_with_options(mock_k8s):
    assert isinstance(mock_k8s, MockKubernetes) and mock_k8s._is_active
    nodes = sorted(n.metadata.name for n in client.CoreV1Api().list_node().items)
    assert nodes == ["mockernetes-control-plane", "node-1", "node-2", "node-3"]


@patch_kubernetes()
def test_alias_with_initial_state_positional():
    assert configmaps() == []


@mock_kubernetes({"namespaces": ["team-a"]})
class TestClassDecorator:
    def test_one(self):
        make_configmap("one", "team-a")
        assert configmaps("team-a") == ["one"]

    def test_two_starts_fresh(self):
        assert configmaps("team-a") == []
        make_configmap("two", "team-a")

    def helper_not_a_test(self):
        return client.Configuration._default


def test_class_decorator_leaves_other_methods():
    assert TestClassDecorator().helper_not_a_test() is None or not os.environ.get("KUBECONFIG", "").startswith("/tmp/mockernetes-py-")


@mock_kubernetes(initial_state={"namespaces": ["ut"]})
class UnitTestStyle(unittest.TestCase):
    def setUp(self):
        make_configmap("from-setup", "ut")

    def test_setup_runs_inside(self):
        self.assertEqual(configmaps("ut"), ["from-setup"])


def test_unittest_class_decorator():
    result = unittest.TestResult()
    unittest.defaultTestLoader.loadTestsFromTestCase(UnitTestStyle).run(result)
    assert result.wasSuccessful(), result.errors + result.failures
    assert result.testsRun == 1


def test_context_manager_class_and_start_stop():
    before = outside_state()
    with mock_kubernetes() as m:
        make_configmap("ctx")
        assert m.host.startswith("https://127.0.0.1:")
    assert outside_state() == before
    with MockKubernetes() as m:
        assert configmaps() == [], "the previous activation's objects are gone"
    m = MockKubernetes()
    m.start()
    try:
        make_configmap("started")
        assert configmaps() == ["started"]
    finally:
        m.stop()
    m.stop()  # twice is fine
    assert outside_state() == before


def test_activations_share_nothing():
    from mockernetes import PodBehaviour
    with mock_kubernetes(pod_behaviours=[PodBehaviour.never_ready()]) as m:
        make_configmap("first")
        client.CoreV1Api().create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="scratch")))
        m.add_fault(verb="get", resource="secrets", code=500, message="boom")
        assert m.requests(verb="create")
    with mock_kubernetes() as m:
        core = client.CoreV1Api()
        assert configmaps() == []
        with pytest.raises(ApiException) as e:
            core.read_namespace("scratch")
        assert e.value.status == 404
        assert m.faults() == []
        assert m.requests(verb="create") == []
        with pytest.raises(ApiException) as e:
            core.read_namespaced_secret("nothing", "default")
        assert e.value.status == 404, "the fault of the last activation is gone"
        assert m._server.control.pod_behaviours() == []


def test_configuration_restored_after_an_exception():
    before = outside_state()
    os.environ["KUBECONFIG"] = "/somewhere/else"
    try:
        before = outside_state()
        with pytest.raises(ZeroDivisionError):
            with mock_kubernetes():
                assert os.environ["KUBECONFIG"] != "/somewhere/else"
                1 / 0
        assert outside_state() == before
    finally:
        os.environ.pop("KUBECONFIG")


def test_loaders_inside():
    with mock_kubernetes() as m:
        make_configmap("seen")
        # What code under test does to find its cluster.
        config.load_kube_config()
        assert client.Configuration.get_default_copy().host == m.host
        assert configmaps() == ["seen"]
        c = client.Configuration()
        config.load_incluster_config(client_configuration=c)
        assert c.host == m.host
        assert [cm.metadata.name for cm in client.CoreV1Api(client.ApiClient(c)).list_namespaced_config_map(
            "default", field_selector="metadata.name=seen").items] == ["seen"]
        config.load_incluster_config()
        assert configmaps() == ["seen"]
        with open(os.environ["KUBECONFIG"]) as f:
            assert yaml.safe_load(f)["clusters"][0]["cluster"]["server"] == m.host


def test_initial_state_forms(tmp_path):
    # The earlier pure-Python mock's shape: plural (or snake_case) names,
    # plain dicts with snake_case keys, namespaces as names.
    old_style = {
        "namespaces": ["test-ns"],
        "pods": [{"metadata": {"name": "existing-pod", "namespace": "test-ns", "labels": {"app": "web"}},
                  "spec": {"containers": [{"name": "test", "image": "nginx"}]}}],
        "service_accounts": [{"metadata": {"name": "runner", "namespace": "test-ns"}}],
        "pvcs": [{"metadata": {"name": "data", "namespace": "test-ns"},
                  "spec": {"access_modes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}],
        "configmaps": [client.V1ConfigMap(metadata=client.V1ObjectMeta(name="model-object"), data={"a": "b"})],
    }
    manifest = tmp_path / "extra.yaml"
    manifest.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: from-file}\ndata: {x: 'y'}\n---\n"
                        "apiVersion: v1\nkind: Namespace\nmetadata: {name: from-file-ns}\n")
    directory = tmp_path / "dir"
    directory.mkdir()
    (directory / "secret.json").write_text('{"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "from-dir"}, '
                                           '"stringData": {"k": "v"}}')
    objects = [{"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": "web", "namespace": "test-ns"},
                "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web2"}},
                         "template": {"metadata": {"labels": {"app": "web2"}},
                                      "spec": {"containers": [{"name": "web", "image": "nginx"}]}}}}]
    with mock_kubernetes(old_style, manifests=[str(manifest), directory, *objects]) as m:
        core, apps = client.CoreV1Api(), client.AppsV1Api()
        p = core.read_namespaced_pod("existing-pod", "test-ns")
        assert p.status.phase == "Running", "initial pods are scheduled and run"
        assert core.read_namespaced_service_account("runner", "test-ns").metadata.name == "runner"
        assert core.read_namespaced_persistent_volume_claim("data", "test-ns").status.phase == "Bound"
        assert core.read_namespaced_config_map("model-object", "default").data == {"a": "b"}
        assert core.read_namespaced_config_map("from-file", "default").data == {"x": "y"}
        assert core.read_namespace("from-file-ns").status.phase == "Active"
        assert core.read_namespaced_secret("from-dir", "default").data == {"k": "dg=="}
        assert apps.read_namespaced_deployment("web", "test-ns").status.ready_replicas == 2
        assert len(core.list_namespaced_pod("test-ns", label_selector="app=web2").items) == 2
        # reset() returns to this mock's starting state.
        core.delete_namespaced_pod("existing-pod", "test-ns")
        make_configmap("scratch")
        m.reset()
        assert core.read_namespaced_pod("existing-pod", "test-ns").status.phase == "Running"
        assert "scratch" not in configmaps()


def test_initial_state_errors():
    with pytest.raises(MockernetesError, match="no resource 'widgets'"):
        mock_kubernetes({"widgets": [{"metadata": {"name": "w"}}]}).start()
    with pytest.raises(MockernetesError, match="metadata.name is required"):
        mock_kubernetes({"configmaps": [{"data": {}}]}).start()
    with pytest.raises(MockernetesError, match="manifests"):
        mock_kubernetes(manifests="apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\nspec: [broken\n").start()
    with pytest.raises(MockernetesError, match="neither a file nor a directory"):
        mock_kubernetes(manifests=["/nonexistent/manifests.yaml"]).start()
    # A failed activation leaves nothing active.
    with mock_kubernetes():
        assert configmaps() == []


def test_errors_from_the_real_api():
    with mock_kubernetes():
        make_configmap("dup")
        with pytest.raises(ApiException) as e:
            make_configmap("dup")
        assert e.value.status == 409 and e.value.reason == "Conflict"
        with pytest.raises(ApiException) as e:
            make_configmap("Not_A_Valid_Name")
        assert e.value.status == 422
        assert "a lowercase RFC 1123 subdomain" in e.value.body
        # An update from a stale resourceVersion conflicts.
        core = client.CoreV1Api()
        cm = core.read_namespaced_config_map("dup", "default")
        cm.data = {"k": "first"}
        core.replace_namespaced_config_map("dup", "default", cm)
        cm.data = {"k": "second"}
        with pytest.raises(ApiException) as e:
            core.replace_namespaced_config_map("dup", "default", cm)
        assert e.value.status == 409
        assert "the object has been modified" in e.value.body


@pytest.mark.mockernetes(settle_on_write=False, nodes=1)
def test_watch_sees_the_phases(mock_k8s):
    from mockernetes import PodBehaviour
    mock_k8s.set_pod_behaviours(PodBehaviour.delays(start="200ms", ready="200ms"))
    core = client.CoreV1Api()
    created = core.create_namespaced_pod("default", client.V1Pod(
        metadata=client.V1ObjectMeta(name="watched"),
        spec=client.V1PodSpec(containers=[client.V1Container(name="c", image="nginx")])))
    assert created.status.phase == "Pending" and not created.spec.node_name
    phases, ready = [], False
    w = watch.Watch()
    for event in w.stream(core.list_namespaced_pod, "default", field_selector="metadata.name=watched",
                          resource_version=created.metadata.resource_version, timeout_seconds=30):
        p = event["object"]
        phases.append(p.status.phase)
        ready = any(c.type == "Ready" and c.status == "True" for c in p.status.conditions or [])
        if ready:
            w.stop()
    assert ready, phases
    assert phases[0] == "Pending" and phases[-1] == "Running"


@pytest.mark.mockernetes({"namespaces": ["marked"]}, nodes=2, settle_on_write=True)
def test_fixture_with_marker(mock_k8s, k8s_api_client, mockernetes_server):
    assert k8s_api_client is mock_k8s.api_client
    core = client.CoreV1Api(k8s_api_client)
    assert core.read_namespace("marked").metadata.name == "marked"
    assert len(core.list_node(label_selector="!node-role.kubernetes.io/control-plane").items) == 2
    assert mockernetes_server.host == mock_k8s.host


def test_nesting_is_refused():
    with mock_kubernetes():
        with pytest.raises(MockernetesError, match="another mock_kubernetes is active"):
            mock_kubernetes().start()
        assert configmaps() == []


def test_options_are_checked():
    with pytest.raises(ValueError):
        MockKubernetes(nodes=0)
    with pytest.raises(ValueError):
        MockKubernetes(history="sometimes")
    with pytest.raises(TypeError):
        MockKubernetes(nodes="three")
