"""Mockernetes for Python: a real Kubernetes 1.37 API server, with
controllers and simulated nodes, behind the official kubernetes client.

    from kubernetes import client
    from mockernetes import mock_kubernetes

    with mock_kubernetes() as mock_k8s:
        client.CoreV1Api().list_namespaced_pod("default")
"""

from .behaviours import PodBehaviour
from .errors import BinaryNotFound, MockernetesError, NotSupported, ServerStartError, SettleTimeout
from .mock import MockKubernetes, RecordedRequest, mock_kubernetes, patch_kubernetes

__version__ = "0.2.0"

__all__ = [
    "BinaryNotFound",
    "MockKubernetes",
    "MockernetesError",
    "NotSupported",
    "PodBehaviour",
    "RecordedRequest",
    "ServerStartError",
    "SettleTimeout",
    "mock_kubernetes",
    "patch_kubernetes",
]
