"""The pytest plugin (registered through the pytest11 entry point).

Fixtures:
  mock_k8s            an active MockKubernetes on a fresh cluster, per test;
                      options from @pytest.mark.mockernetes(**options)
  k8s_api_client      mock_k8s.api_client
  mockernetes_server  the session's server (its host and kubeconfig)

Options: --mockernetes-binary PATH, --mockernetes-server KUBECONFIG|URL.
Each pytest-xdist worker is a process of its own, with its own server.
"""

from __future__ import annotations

import os

import pytest

from . import _server
from ._binary import ENV_BINARY
from .mock import ENV_SERVER, MockKubernetes


def pytest_addoption(parser):
    group = parser.getgroup("mockernetes")
    group.addoption("--mockernetes-binary", metavar="PATH",
                    help="the mockernetes server binary (default: $MOCKERNETES_BINARY, the wheel's, or PATH)")
    group.addoption("--mockernetes-server", metavar="KUBECONFIG|URL",
                    help="use this cluster instead of starting one (what needs Mockernetes, such as reset, "
                         "raises NotSupported on another cluster)")


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "mockernetes(**options): options of the mock_k8s fixture (those of MockKubernetes)")
    # Through the environment, so that mock_kubernetes used directly in tests
    # follows the same options.
    for opt, env in (("mockernetes_binary", ENV_BINARY), ("mockernetes_server", ENV_SERVER)):
        value = config.getoption(opt)
        if value:
            os.environ[env] = os.path.abspath(value) if opt == "mockernetes_binary" or "://" not in value else value


@pytest.fixture(scope="session")
def mockernetes_server():
    """The session's default server (started on first use)."""
    target = os.environ.get(ENV_SERVER)
    if target:
        return _server.POOL.existing(target)
    return _server.POOL.get(None, [])


@pytest.fixture
def mock_k8s(request):
    """An active MockKubernetes on a fresh cluster."""
    options = {}
    for marker in reversed(list(request.node.iter_markers("mockernetes"))):
        if marker.args:
            options["initial_state"] = marker.args[0]
        options.update(marker.kwargs)
    initial_state = options.pop("initial_state", None)
    with MockKubernetes(initial_state, **options) as m:
        yield m


@pytest.fixture
def k8s_api_client(mock_k8s):
    """A kubernetes.client.ApiClient for the mock's cluster."""
    return mock_k8s.api_client
