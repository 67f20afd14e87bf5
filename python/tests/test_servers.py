"""Server options, finding the binary, other clusters, other clients and
pytest-xdist."""

import asyncio
import os
import subprocess
import sys
import textwrap
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from kubernetes import client, config, dynamic
from kubernetes.client.rest import ApiException

import mockernetes._binary
from mockernetes import BinaryNotFound, MockKubernetes, NotSupported, ServerStartError, mock_kubernetes

WIDGET_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.example.com"},
    "spec": {"group": "example.com", "scope": "Namespaced",
             "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "shortNames": ["wd"]},
             "versions": [{"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": {
                 "type": "object", "properties": {"spec": {
                     "type": "object", "required": ["size"],
                     "x-kubernetes-validations": [{"rule": "self.size <= 10", "message": "size must be at most 10"}],
                     "properties": {"size": {"type": "integer"}}}}}}}]},
}
WIDGETS = dict(group="example.com", version="v1", plural="widgets")


def test_crds_and_custom_resources_in_initial_state():
    state = {"widgets": [{"metadata": {"name": "w1"}, "spec": {"size": 3}}]}
    with mock_kubernetes(state, crds=[WIDGET_CRD]) as m:
        custom = client.CustomObjectsApi()
        assert custom.get_namespaced_custom_object(name="w1", namespace="default", **WIDGETS)["spec"] == {"size": 3}
        with pytest.raises(ApiException) as e:
            custom.create_namespaced_custom_object(namespace="default", body={
                "apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "big"}, "spec": {"size": 11}},
                **WIDGETS)
        assert e.value.status == 422 and "size must be at most 10" in e.value.body
        crd_host = m.host
    with mock_kubernetes() as m:
        assert m.host != crd_host, "CRDs get a server of their own"
    with mock_kubernetes(crds=WIDGET_CRD) as m:
        assert m.host == crd_host, "the same CRDs reuse it"
        assert client.CustomObjectsApi().list_namespaced_custom_object(namespace="default", **WIDGETS)["items"] == []


def test_without_controllers_and_gateway_api():
    with mock_kubernetes(controllers="none", gateway_api=False):
        apps = client.AppsV1Api()
        apps.create_namespaced_deployment("default", client.V1Deployment(
            metadata=client.V1ObjectMeta(name="inert"),
            spec=client.V1DeploymentSpec(selector=client.V1LabelSelector(match_labels={"a": "b"}),
                                         template=client.V1PodTemplateSpec(
                                             metadata=client.V1ObjectMeta(labels={"a": "b"}),
                                             spec=client.V1PodSpec(containers=[client.V1Container(name="c", image="i")])))))
        assert apps.list_namespaced_replica_set("default").items == [], "no controllers: as envtest"
        groups = [g.name for g in client.ApisApi().get_api_versions().groups]
        assert "gateway.networking.k8s.io" not in groups
    with mock_kubernetes():
        groups = [g.name for g in client.ApisApi().get_api_versions().groups]
        assert "gateway.networking.k8s.io" in groups


def test_finding_the_binary(monkeypatch, tmp_path):
    with pytest.raises(BinaryNotFound, match="/nowhere/mockernetes"):
        MockKubernetes(binary="/nowhere/mockernetes").start()
    monkeypatch.setenv("MOCKERNETES_BINARY", "/nowhere/else")
    with pytest.raises(BinaryNotFound, match="MOCKERNETES_BINARY names '/nowhere/else'"):
        MockKubernetes().start()
    monkeypatch.delenv("MOCKERNETES_BINARY")
    monkeypatch.setattr(mockernetes._binary, "bundled_binary", lambda: None)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(BinaryNotFound) as e:
        mockernetes._binary.find_binary()
    for where in ("MOCKERNETES_BINARY", "wheel", "PATH"):
        assert where in str(e.value)


def test_a_server_that_fails_shows_its_error(tmp_path):
    with pytest.raises(ServerStartError) as e:
        mock_kubernetes(crds=[str(tmp_path / "missing-crds.yaml")]).start()
    assert "missing-crds.yaml" in str(e.value) and "did not start" in str(e.value)
    broken = tmp_path / "broken.yaml"
    broken.write_text("apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: {name: x}\n")
    with pytest.raises(ServerStartError) as e:
        mock_kubernetes(crds=[str(broken)]).start()
    assert "broken.yaml" in str(e.value)
    assert client.Configuration._default is None or "127.0.0.1" not in (client.Configuration._default.host or "")


def test_an_existing_mockernetes_by_kubeconfig(mockernetes_server):
    with mock_kubernetes(server=mockernetes_server.kubeconfig, initial_state={"namespaces": ["by-kubeconfig"]}) as m:
        assert m.host == mockernetes_server.host
        core = client.CoreV1Api()
        assert core.read_namespace("by-kubeconfig").status.phase == "Active"
        core.create_namespaced_config_map("default", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="x")))
        m.reset()  # a Mockernetes server: reset works
        with pytest.raises(ApiException):
            core.read_namespaced_config_map("x", "default")


class _APIOnlyProxy(BaseHTTPRequestHandler):
    """Forwards /api and /apis to a cluster and nothing else, with the
    proxy's credentials, as `kubectl proxy` does: a cluster without the
    test-control API."""

    def _forward(self):
        if not (self.path.startswith("/api/") or self.path.startswith("/apis") or self.path == "/api"):
            self.send_response(404)
            self.end_headers()
            return
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0)) or None
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length", "connection")}
        r = self.server.http.request(self.command, self.server.target + self.path, body=body, headers=headers,
                                     preload_content=True, retries=False)
        self.send_response(r.status)
        for k, v in r.headers.items():
            if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(r.data)))
        self.end_headers()
        self.wfile.write(r.data)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _forward

    def log_message(self, *args):
        pass


def test_another_cluster_by_url(mockernetes_server):
    import urllib3
    c = mockernetes_server.configuration()
    proxy = ThreadingHTTPServer(("127.0.0.1", 0), _APIOnlyProxy)
    proxy.target = c.host
    proxy.http = urllib3.PoolManager(ca_certs=c.ssl_ca_cert, cert_file=c.cert_file, key_file=c.key_file)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{proxy.server_address[1]}"
    try:
        with mock_kubernetes({"configmaps": [{"metadata": {"name": "applied"}, "data": {"a": "1"}}]}, server=url) as m:
            assert m.host == url
            core = client.CoreV1Api()
            assert core.read_namespaced_config_map("applied", "default").data == {"a": "1"}
            config.load_kube_config()  # KUBECONFIG names the URL too
            assert client.Configuration.get_default_copy().host == url
            for call in (m.reset, m.settle, m.snapshot, lambda: m.add_fault(code=500), m.requests):
                with pytest.raises(NotSupported, match="needs a Mockernetes server"):
                    call()
        with pytest.raises(NotSupported):
            mock_kubernetes(server=url, nodes=2).start()
    finally:
        proxy.shutdown()


def test_other_clients_through_kubeconfig():
    import lightkube
    from lightkube.resources.core_v1 import ConfigMap

    with mock_kubernetes({"configmaps": [{"metadata": {"name": "for-lightkube"}, "data": {"k": "v"}}]}):
        kc = lightkube.Client()  # reads KUBECONFIG
        assert kc.get(ConfigMap, "for-lightkube", namespace="default").data == {"k": "v"}
        # kr8s and kubernetes_asyncio read KUBECONFIG too.
        import kr8s
        (cm,) = kr8s.get("configmaps", "for-lightkube", namespace="default")
        assert cm.raw["data"] == {"k": "v"}

        async def with_asyncio_client():
            from kubernetes_asyncio import client as aclient, config as aconfig
            await aconfig.load_kube_config()
            async with aclient.ApiClient() as api:
                return (await aclient.CoreV1Api(api).read_namespaced_config_map("for-lightkube", "default")).data
        assert asyncio.run(with_asyncio_client()) == {"k": "v"}
        # A process of its own, as a CLI under test would run.
        out = subprocess.run([sys.executable, "-c", textwrap.dedent("""
            import os, yaml, kubernetes
            kubernetes.config.load_kube_config()
            print(kubernetes.client.CoreV1Api().read_namespaced_config_map("for-lightkube", "default").data["k"])
        """)], capture_output=True, text=True, env=dict(os.environ), timeout=60)
        assert out.stdout.strip() == "v", out.stderr


def test_xdist_workers_have_their_own_servers(pytester):
    pytester.makepyfile(textwrap.dedent("""
        import os
        import pytest
        from kubernetes import client

        @pytest.mark.parametrize("i", range(4))
        def test_isolated(mock_k8s, i):
            core = client.CoreV1Api()
            names = [cm.metadata.name for cm in core.list_namespaced_config_map("default").items]
            assert names == ["kube-root-ca.crt"], names
            core.create_namespaced_config_map("default", client.V1ConfigMap(metadata=client.V1ObjectMeta(name=f"cm-{i}")))
            with open(os.path.join(os.environ["HOSTS_DIR"], f"{i}"), "w") as f:
                f.write(mock_k8s.host + " " + os.environ.get("PYTEST_XDIST_WORKER", ""))
    """))
    hosts = pytester.mkdir("hosts")
    os.environ["HOSTS_DIR"] = str(hosts)
    try:
        result = pytester.runpytest_subprocess("-n", "2", "-p", "no:cacheprovider", timeout=300)
    finally:
        os.environ.pop("HOSTS_DIR")
    result.assert_outcomes(passed=4)
    seen = {}
    for f in hosts.iterdir():
        host, worker = f.read_text().split()
        seen.setdefault(worker, set()).add(host)
    assert len(seen) == 2, seen
    (a,), (b,) = seen.values()
    assert a != b, "each worker has its own server"


@pytest.mark.parametrize("how", ["exit", "kill"])
def test_servers_end_with_the_process(how):
    """At interpreter exit the servers are stopped; on Linux also when the
    process is killed."""
    script = textwrap.dedent("""
        import sys, time
        from mockernetes import mock_kubernetes
        with mock_kubernetes() as m:
            print(m._server.process.pid, flush=True)
        if sys.argv[1] == "kill":
            time.sleep(60)
    """)
    p = subprocess.Popen([sys.executable, "-c", script, how], stdout=subprocess.PIPE, text=True)
    pid = int(p.stdout.readline())
    assert _alive(pid)
    if how == "kill":
        p.kill()
    p.wait(60)
    p.stdout.close()
    import time
    deadline = time.monotonic() + 10
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(pid), f"server {pid} outlived its process ({how})"


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def test_dynamic_client_finds_crds_and_apiservices(mock_k8s):
    """The Python client's DynamicClient reads the legacy group list (/apis),
    which names every group as kube-apiserver's does: apiextensions.k8s.io,
    apiregistration.k8s.io and the CRDs' groups."""
    dyn = dynamic.DynamicClient(mock_k8s.api_client)
    crds = dyn.resources.get(api_version="apiextensions.k8s.io/v1", kind="CustomResourceDefinition")
    assert "httproutes.gateway.networking.k8s.io" in [c.metadata.name for c in crds.get().items]
    routes = dyn.resources.get(api_version="gateway.networking.k8s.io/v1", kind="HTTPRoute")
    routes.create(namespace="default", body={
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute", "metadata": {"name": "r"},
        "spec": {"rules": [{"backendRefs": [{"name": "svc", "port": 80}]}]}})
    assert routes.get(namespace="default", name="r").metadata.name == "r"
    apiservices = dyn.resources.get(api_version="apiregistration.k8s.io/v1", kind="APIService")
    available = {a.metadata.name: [c.status for c in a.status.conditions if c.type == "Available"]
                 for a in apiservices.get().items}
    assert available["v1.apps"] == ["True"] and available["v1.gateway.networking.k8s.io"] == ["True"]
