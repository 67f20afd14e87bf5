"""exec and port-forward from the official client: its stream() and
portforward() over WebSocket, answered by pod behaviour rules, the
simulated shell, and a test's own HTTP server."""

import http.server
import threading

import pytest
from kubernetes import client
from kubernetes.stream import portforward, stream

from mockernetes import PodBehaviour


def pod(name, image="postgres:17", annotations=None, ports=None):
    return client.V1Pod(
        metadata=client.V1ObjectMeta(name=name, annotations=annotations),
        spec=client.V1PodSpec(containers=[client.V1Container(
            name="db", image=image, ports=[client.V1ContainerPort(container_port=p) for p in ports or []])]))


def run(name, command):
    resp = stream(client.CoreV1Api().connect_get_namespaced_pod_exec, name, "default", command=command,
                  stdin=False, stdout=True, stderr=True, tty=False, _preload_content=False)
    resp.run_forever(timeout=10)
    out, err = resp.read_stdout(), resp.read_stderr()
    resp.close()
    return out, err, resp.returncode


@pytest.mark.mockernetes(pod_behaviours=[
    PodBehaviour.exec("pg_isready*", stdout="accepting connections\n", image="postgres*"),
    PodBehaviour.exec("pg_dump *", stderr="connection failed\n", exit_code=2, image="postgres*"),
])
def test_exec(mock_k8s):
    client.CoreV1Api().create_namespaced_pod("default", pod("db"))
    assert run("db", ["pg_isready", "-h", "localhost"]) == ("accepting connections\n", "", 0)
    assert run("db", ["pg_dump", "app"]) == ("", "connection failed\n", 2)
    assert run("db", ["sh", "-c", "echo hello; exit 3"]) == ("hello\n", "", 3)
    assert run("db", ["curl", "-s", "localhost"]) == ("", "sh: curl: not found\n", 127)
    assert run("db", ["cat", "/etc/hostname"]) == ("db\n", "", 0)


class Backend(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = f"backend saw {self.path}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def backend():
    server = http.server.HTTPServer(("127.0.0.1", 0), Backend)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"127.0.0.1:{server.server_port}"
    server.shutdown()


def test_port_forward_and_proxy(mock_k8s, backend):
    core = client.CoreV1Api()
    core.create_namespaced_pod("default", pod("api", image="example/api:1", ports=[8080],
                                              annotations={"mockernetes.io/port-forward": f"8080={backend}"}))
    assert core.connect_get_namespaced_pod_proxy_with_path("api:8080", "default", "health") == "backend saw /health"
    pf = portforward(core.connect_get_namespaced_pod_portforward, "api", "default", ports="8080")
    sock = pf.socket(8080)
    sock.setblocking(True)
    sock.sendall(b"GET /forwarded HTTP/1.0\r\nHost: api\r\n\r\n")
    reply = b""
    while True:
        chunk = sock.recv(4096)
        if not chunk:
            break
        reply += chunk
    sock.close()
    pf.close()
    assert reply.startswith(b"HTTP/1.0 200") and reply.endswith(b"backend saw /forwarded"), reply
