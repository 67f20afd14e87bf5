"""mock_kubernetes: a real Kubernetes API server behind the official
client, for the length of a test."""

from __future__ import annotations

import datetime
import functools
import inspect
import os
import threading
from typing import Any, Callable, Dict, List, Optional, Sequence, Union

from kubernetes import client as k8s_client
from kubernetes import config as k8s_config
from kubernetes.config import incluster_config, kube_config

from . import _server
from ._state import Manifests, apply
from .behaviours import to_rules
from .errors import MockernetesError, NotSupported

ENV_SERVER = "MOCKERNETES_SERVER"

_active_lock = threading.Lock()


class RecordedRequest:
    """One API request from the server's request history."""

    def __init__(self, d: Dict[str, Any]) -> None:
        self.raw = d
        self.seq: int = d.get("seq", 0)
        self.time: str = d.get("time", "")
        self.user: str = d.get("user", "")
        self.user_agent: str = d.get("userAgent", "")
        self.internal: bool = d.get("internal", False)
        self.verb: str = d.get("verb", "")
        self.api_group: str = d.get("apiGroup", "")
        self.api_version: str = d.get("apiVersion", "")
        self.resource: str = d.get("resource", "")
        self.subresource: str = d.get("subresource", "")
        self.namespace: str = d.get("namespace", "")
        self.name: str = d.get("name", "")
        self.path: str = d.get("path", "")
        self.query: str = d.get("query", "")
        self.code: int = d.get("code", 0)
        self.duration: str = d.get("duration", "")
        self.body: str = d.get("body", "")

    def __repr__(self) -> str:
        q = "?" + self.query if self.query else ""
        return f"<{self.verb} {self.path}{q} -> {self.code}>"


class MockKubernetes:
    """A Mockernetes cluster for the official kubernetes client.

    Use it as a context manager (``with MockKubernetes() as k8s:``), a
    decorator of functions or classes (``@mock_kubernetes``,
    ``@mock_kubernetes(nodes=3)``), or with ``start()``/``stop()``. While
    active, ``kubernetes.client`` APIs built with no arguments,
    ``KUBECONFIG``, ``load_kube_config()`` and ``load_incluster_config()``
    all reach the cluster; on stop all of that is as it was before.

    Each activation begins from a reset cluster (the server's state right
    after it started) holding ``initial_state`` and ``manifests``.

    Options:
      initial_state: a dict by plural resource names ({"namespaces": ["a"],
        "pods": [...], "deployments": [...]}: any resource the server serves,
        custom resources included; snake_case names and model objects
        welcome), a list of objects, or paths of YAML files or directories.
      nodes: how many simulated nodes (node-1 ... node-N), or a list of node
        specs ({"name", "labels", "taints", "capacity"}); default one node.
      pod_behaviours: PodBehaviour objects (or rule dicts) for the
        simulated kubelet: crash loops, image pull failures, delays, logs.
      crds: CustomResourceDefinitions (paths or objects) installed when the
        server starts (a server of its own).
      manifests: more objects to create, as initial_state takes them.
      gateway_api: install the Gateway API CRDs (default True).
      controllers: the controllers to run, as kube-controller-manager's
        --controllers ("*", "none", or a list).
      settle_on_write: each write is answered once the controllers,
        scheduler and kubelet are done with it (default True), so tests
        need no sleeps or polling.
      history: keep the request history (False: keep none); "bodies" keeps
        request bodies too.
      server: a kubeconfig path or URL of a cluster to use instead (tests
        can then run against kind); what needs Mockernetes (reset, faults,
        request history) raises NotSupported there.
      binary: the mockernetes binary (else MOCKERNETES_BINARY, the wheel's,
        or PATH).
    """

    def __init__(self, initial_state: Any = None, *, nodes: Union[int, Sequence[Dict[str, Any]], None] = None,
                 pod_behaviours: Any = None, crds: Any = None, manifests: Any = None,
                 gateway_api: bool = True, controllers: Union[str, Sequence[str]] = "*",
                 settle_on_write: bool = True, history: Union[bool, str] = True,
                 server: Optional[str] = None, binary: Optional[str] = None,
                 settle_timeout: float = 5.0) -> None:
        if history not in (True, False, "bodies"):
            raise ValueError(f"history: {history!r} is not True, False or 'bodies'")
        if nodes is not None and not isinstance(nodes, int) and not isinstance(nodes, (list, tuple)):
            raise TypeError("nodes: an int or a list of node specs")
        if isinstance(nodes, int) and not 0 < nodes <= 250:
            raise ValueError(f"nodes: {nodes} is not between 1 and 250")
        self.initial_state = initial_state
        self.options = dict(nodes=nodes, pod_behaviours=pod_behaviours, crds=crds, manifests=manifests,
                            gateway_api=gateway_api, controllers=controllers, settle_on_write=settle_on_write,
                            history=history, server=server, binary=binary, settle_timeout=settle_timeout)
        self._is_active = False
        self._server: Optional[_server.Server] = None
        self._saved: Optional[Dict[str, Any]] = None
        self._faults: List[Dict[str, Any]] = []
        self.api_client: Optional[k8s_client.ApiClient] = None
        self.configuration: Optional[k8s_client.Configuration] = None

    # Activation.

    def start(self) -> "MockKubernetes":
        """Activate: reset the cluster to this mock's state and point the
        client at it."""
        if self._is_active:
            return self
        server = self._get_server()
        with _active_lock:
            if server.active is not None:
                raise MockernetesError(
                    "mockernetes: another mock_kubernetes is active on the same server in this process; "
                    "stop it first (activations do not nest: each resets the cluster)")
            server.active = self
        try:
            self._server = server
            self._reset()
            self.configuration = server.configuration()
            self._patch()
            self.api_client = k8s_client.ApiClient(self.configuration)
            self._is_active = True
        except BaseException:
            server.active = None
            if self._saved is not None:
                self._unpatch()
            raise
        return self

    def stop(self) -> None:
        """Deactivate: the client configuration, KUBECONFIG and the config
        loaders are as they were before start()."""
        if not self._is_active:
            return
        self._is_active = False
        try:
            if self.api_client is not None:
                try:
                    self.api_client.close()
                except Exception:
                    pass
        finally:
            self._unpatch()
            if self._server is not None:
                self._server.active = None

    def __enter__(self) -> "MockKubernetes":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def __call__(self, target: Any) -> Any:
        """Decorate a function (each call runs in a fresh activation) or a
        class (each test method does: methods whose name starts with
        "test", and setUp/tearDown run inside it for unittest classes)."""
        if inspect.isclass(target):
            return self._decorate_class(target)
        if not callable(target):
            raise TypeError(f"mock_kubernetes cannot decorate {target!r}")
        return self._decorate_function(target)

    def _fresh(self) -> "MockKubernetes":
        return MockKubernetes(self.initial_state, **self.options)

    def _decorate_function(self, func: Callable) -> Callable:
        sig = inspect.signature(func)
        inject = "mock_k8s" in sig.parameters

        if inspect.iscoroutinefunction(func):
            @functools.wraps(func)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                with self._fresh() as m:
                    if inject:
                        kwargs["mock_k8s"] = m
                    return await func(*args, **kwargs)
            wrapper = async_wrapper
        else:
            @functools.wraps(func)
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                with self._fresh() as m:
                    if inject:
                        kwargs["mock_k8s"] = m
                    return func(*args, **kwargs)
        if inject:
            # pytest reads the signature for fixtures: mock_k8s is ours.
            wrapper.__signature__ = sig.replace(parameters=[p for n, p in sig.parameters.items() if n != "mock_k8s"])
        return wrapper

    def _decorate_class(self, cls: type) -> type:
        is_unittest = any(b.__name__ == "TestCase" and b.__module__.startswith("unittest") for b in cls.__mro__)
        if is_unittest:
            # The activation spans setUp, the test and tearDown.
            mock = self
            orig_setup, orig_teardown = cls.setUp, cls.tearDown

            def setUp(inner: Any) -> None:
                inner._mockernetes = mock._fresh().start()
                try:
                    orig_setup(inner)
                except BaseException:
                    inner._mockernetes.stop()
                    raise

            def tearDown(inner: Any) -> None:
                try:
                    orig_teardown(inner)
                finally:
                    inner._mockernetes.stop()

            cls.setUp, cls.tearDown = setUp, tearDown
            return cls
        for name, attr in list(vars(cls).items()):
            if name.startswith("test") and callable(attr):
                setattr(cls, name, self._decorate_function(attr))
        return cls

    # The server and its reset.

    def _get_server(self) -> _server.Server:
        o = self.options
        target = o["server"] or os.environ.get(ENV_SERVER)
        if target:
            return _server.POOL.existing(target)
        args: List[str] = []
        controllers = o["controllers"]
        if not isinstance(controllers, str):
            controllers = ",".join(controllers)
        if controllers != "*":
            args += ["--controllers", controllers]
        if not o["gateway_api"]:
            args.append("--gateway-api=false")
        paths, objects = _crds(o["crds"])
        for path in paths:
            args += ["--crds", path]
        if objects:
            args += ["--crds", _server.POOL.content_file(objects)]
        return _server.POOL.get(o["binary"], args)

    def _manifests(self) -> Manifests:
        m = Manifests()
        discovery = lambda: self._server.discovery()  # noqa: E731 - read only when needed
        m.add(self.initial_state, discovery, "initial_state")
        m.add(self.options["manifests"], discovery, "manifests")
        return m

    def _reset(self) -> None:
        """Make the cluster this mock's starting state."""
        s, o = self._server, self.options
        manifests = self._manifests()
        if not s.control.admin:
            if o["nodes"] is not None or o["pod_behaviours"] is not None:
                raise NotSupported(f"mockernetes: nodes and pod_behaviours need a Mockernetes server; {s.host} is not one")
            if manifests:
                apply(s.control, s.discovery(), manifests.documents())
            return
        body: Dict[str, Any] = {}
        nodes = o["nodes"]
        if isinstance(nodes, int):
            body["nodes"] = [{"name": f"node-{i}"} for i in range(1, nodes + 1)]
        elif nodes is not None:
            body["nodes"] = list(nodes)
        if o["pod_behaviours"] is not None:
            body["podBehaviours"] = to_rules(o["pod_behaviours"])
        if manifests:
            body["manifests"] = manifests.yaml()
        s.control.reset(body)
        self._faults = []
        self._apply_settings()

    def _apply_settings(self) -> None:
        s, o = self._server, self.options
        want: Dict[str, Any] = {"settleOnWrite": bool(o["settle_on_write"]),
                                "settleOnWriteTimeout": f"{o['settle_timeout']}s",
                                # The server always keeps at least one request.
                                "requestHistory": {"size": 10000 if o["history"] else 1,
                                                   "bodies": o["history"] == "bodies"}}
        changes = {k: v for k, v in want.items() if s.settings.get(k) != v}
        if changes:
            s.control.settings(changes)
            s.settings.update(changes)

    # Pointing the client at the cluster.

    def _patch(self) -> None:
        s = self._server
        Configuration = k8s_client.Configuration
        saved: Dict[str, Any] = {
            "default": Configuration.__dict__.get("_default"),
            "env": {k: os.environ.get(k) for k in ("KUBECONFIG", "KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT")},
            "kube_config_location": kube_config.KUBE_CONFIG_DEFAULT_LOCATION,
            "config_location": getattr(k8s_config, "KUBE_CONFIG_DEFAULT_LOCATION", None),
            "token_file": incluster_config.SERVICE_TOKEN_FILENAME,
            "cert_file": incluster_config.SERVICE_CERT_FILENAME,
        }
        self._saved = saved
        Configuration.set_default(self.configuration)
        if s.kubeconfig:
            os.environ["KUBECONFIG"] = s.kubeconfig
            kube_config.KUBE_CONFIG_DEFAULT_LOCATION = s.kubeconfig
            if saved["config_location"] is not None:
                k8s_config.KUBE_CONFIG_DEFAULT_LOCATION = s.kubeconfig
        sa = s.serviceaccount_dir
        if sa is not None:
            os.environ["KUBERNETES_SERVICE_HOST"] = s.hostname
            os.environ["KUBERNETES_SERVICE_PORT"] = s.port
            incluster_config.SERVICE_TOKEN_FILENAME = os.path.join(sa, "token")
            incluster_config.SERVICE_CERT_FILENAME = os.path.join(sa, "ca.crt")

    def _unpatch(self) -> None:
        saved, self._saved = self._saved, None
        if saved is None:
            return
        k8s_client.Configuration._default = saved["default"]
        for k, v in saved["env"].items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        kube_config.KUBE_CONFIG_DEFAULT_LOCATION = saved["kube_config_location"]
        if saved["config_location"] is not None:
            k8s_config.KUBE_CONFIG_DEFAULT_LOCATION = saved["config_location"]
        incluster_config.SERVICE_TOKEN_FILENAME = saved["token_file"]
        incluster_config.SERVICE_CERT_FILENAME = saved["cert_file"]

    # The handle.

    def _check_active(self) -> _server.Server:
        if not self._is_active or self._server is None:
            raise MockernetesError("mockernetes: the mock is not active (use it as a context manager, a decorator, or start())")
        return self._server

    def _admin(self, what: str):
        s = self._check_active()
        if not s.control.admin:
            raise NotSupported(f"mockernetes: {what} needs a Mockernetes server; {s.host} is not one")
        return s.control

    @property
    def kubeconfig(self) -> str:
        """The path of a kubeconfig for the cluster (KUBECONFIG while active)."""
        return self._check_active().kubeconfig

    @property
    def host(self) -> str:
        """The API server's URL."""
        return self._check_active().host

    def reset(self) -> None:
        """Back to this mock's starting state (the server's baseline, then
        initial_state and manifests); faults and history cleared."""
        self._admin("reset")
        self._reset()

    def settle(self, timeout: float = 5.0) -> None:
        """Return once controllers, scheduler and kubelet have nothing left
        to do now (delays a test asked for are not waited for); raises
        SettleTimeout naming what is still busy."""
        self._admin("settle").settle(timeout)

    def set_pod_behaviours(self, *behaviours: Any) -> None:
        """Replace the pod behaviour rules (PodBehaviour objects or rule
        dicts); pods created from now on follow them."""
        if len(behaviours) == 1 and isinstance(behaviours[0], (list, tuple)):
            behaviours = tuple(behaviours[0])
        self._admin("set_pod_behaviours").set_pod_behaviours(to_rules(list(behaviours)))

    def add_fault(self, *, verb: Optional[str] = None, resource: Optional[str] = None,
                  api_group: Optional[str] = None, subresource: Optional[str] = None,
                  namespace: Optional[str] = None, name: Optional[str] = None,
                  user_agent: Optional[str] = None, internal: bool = False,
                  code: Optional[int] = None, reason: Optional[str] = None, message: Optional[str] = None,
                  retry_after: Optional[int] = None, latency: Union[float, str, None] = None,
                  drop: bool = False, end_watch_after: Optional[int] = None,
                  times: Optional[int] = None, probability: Optional[float] = None,
                  seed: Optional[int] = None) -> None:
        """Make the API fail as a real server does: requests matching verb
        (get, list, watch, create, update, patch, delete, ...), resource
        ("pods", "deployments.apps"), subresource, namespace, name and user
        agent answer with code (409, 429 with retry_after, 500, 503, 504,
        ...) and upstream's Status body, or get latency (seconds), or the
        connection dropped, or a watch ended after end_watch_after events;
        for the first `times` matches, or with a probability (seeded).
        Requests of the cluster's own components are not matched unless
        internal=True."""
        control = self._admin("add_fault")
        if resource and "." in resource and api_group is None:
            resource, api_group = resource.split(".", 1)
        rule = {"verb": verb, "apiGroup": api_group, "resource": resource, "subresource": subresource,
                "namespace": namespace, "name": name, "userAgent": user_agent, "internal": internal or None,
                "code": code, "reason": reason, "message": message, "retryAfterSeconds": retry_after,
                "latency": (f"{latency}s" if isinstance(latency, (int, float)) else latency),
                "drop": drop or None, "endWatchAfter": end_watch_after, "times": times,
                "probability": probability, "seed": seed}
        rule = {k: v for k, v in rule.items() if v is not None}
        control.set_faults(self._faults + [rule])
        self._faults.append(rule)

    def faults(self) -> List[Dict[str, Any]]:
        """The fault rules in force, each with its "hits"."""
        return self._admin("faults").faults()

    def clear_faults(self) -> None:
        """Remove every fault rule."""
        self._admin("clear_faults").clear_faults()
        self._faults = []

    def requests(self, verb: Optional[str] = None, resource: Optional[str] = None,
                 namespace: Optional[str] = None, name: Optional[str] = None,
                 subresource: Optional[str] = None, api_group: Optional[str] = None,
                 user_agent: Optional[str] = None, since: Optional[str] = None,
                 internal: Optional[bool] = False) -> List[RecordedRequest]:
        """The API requests made since the activation, oldest first,
        filtered; by default only those of the test's own code
        (internal=None includes the cluster's components)."""
        if not self.options["history"]:
            raise MockernetesError("mockernetes: requests(): this mock was made with history=False")
        q = {"verb": verb, "resource": resource, "namespace": namespace, "name": name,
             "subresource": subresource, "apiGroup": api_group, "userAgent": user_agent, "since": since,
             "internal": None if internal is None else str(bool(internal)).lower()}
        return [RecordedRequest(d) for d in self._admin("requests").requests(q)]

    def clear_requests(self) -> None:
        """Forget the request history."""
        self._admin("clear_requests").clear_requests()

    def snapshot(self) -> str:
        """Every object of the cluster as multi-document YAML (what
        restore() and kubectl apply -f take)."""
        return self._admin("snapshot").snapshot()

    def restore(self, snapshot: str) -> None:
        """Make the cluster what snapshot describes, object for object."""
        self._admin("restore").restore(snapshot)

    def events(self, namespace: str = "default", involved_object: Any = None) -> List[Any]:
        """The core/v1 Events of namespace, oldest first, optionally only those
        about involved_object (a model object, a dict, or a name)."""
        self._check_active()
        selector = []
        if involved_object is not None:
            if isinstance(involved_object, str):
                selector.append(f"involvedObject.name={involved_object}")
            else:
                meta = involved_object.get("metadata") if isinstance(involved_object, dict) else involved_object.metadata
                get = (lambda k: meta.get(k)) if isinstance(meta, dict) else (lambda k: getattr(meta, k, None))
                if get("name"):
                    selector.append(f"involvedObject.name={get('name')}")
                if get("uid"):
                    selector.append(f"involvedObject.uid={get('uid')}")
        api = k8s_client.CoreV1Api(self.api_client)
        items = api.list_namespaced_event(namespace, field_selector=",".join(selector) or None).items

        return sorted(items, key=_event_order)

    # Conveniences of the earlier pure-Python mock of the same name.

    def get_pods(self, namespace: str = "default", label_selector: Optional[str] = None) -> List[Any]:
        self._check_active()
        return k8s_client.CoreV1Api(self.api_client).list_namespaced_pod(namespace, label_selector=label_selector).items

    def get_deployments(self, namespace: str = "default", label_selector: Optional[str] = None) -> List[Any]:
        self._check_active()
        return k8s_client.AppsV1Api(self.api_client).list_namespaced_deployment(namespace, label_selector=label_selector).items

    def get_services(self, namespace: str = "default", label_selector: Optional[str] = None) -> List[Any]:
        self._check_active()
        return k8s_client.CoreV1Api(self.api_client).list_namespaced_service(namespace, label_selector=label_selector).items


def _event_order(e: Any) -> tuple:
    """When an event was last seen, to the nanosecond where it can tell.

    Core events carry whole seconds, events.k8s.io ones (the scheduler's)
    microseconds. client-go's recorders name an event after the instant
    they made it (<object>.<hex nanoseconds>), so within its second the
    name tells which came first, whichever was written first; failing
    that, the order they were written in."""
    t = e.last_timestamp or e.event_time or e.metadata.creation_timestamp
    at = _nanoseconds(t) if t else 0
    prefix, _, suffix = (e.metadata.name or "").rpartition(".")
    involved = e.involved_object.name if e.involved_object else None
    if prefix and prefix == involved:
        try:
            made = int(suffix, 16)
        except ValueError:
            made = None
        # The instant named must fall in the timestamp's precision
        # (an aggregated event was last seen after it was made).
        step = 1000 if t and t.microsecond else 10**9
        if made is not None and at <= made < at + step:
            at = made
    rv = e.metadata.resource_version or "0"
    return (at, int(rv) if rv.isdigit() else 0)


def _nanoseconds(t: Any) -> int:
    """t (an aware datetime) in nanoseconds since the epoch, exactly."""
    return (t - _EPOCH) // datetime.timedelta(microseconds=1) * 1000


_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)


def _crds(crds: Any):
    """The paths among crds (the server reads them itself), and the objects
    among them as YAML."""
    if crds is None:
        return [], ""
    if not isinstance(crds, (list, tuple)):
        crds = [crds]
    paths, objects = [], Manifests()
    for i, c in enumerate(crds):
        if isinstance(c, (str, os.PathLike)):
            paths.append(os.path.abspath(os.fspath(c)))
        else:
            objects.add(c, lambda: None, f"crds[{i}]")
    return paths, objects.yaml() if objects else ""


def mock_kubernetes(initial_state: Any = None, **options: Any) -> Any:
    """A MockKubernetes: ``with mock_kubernetes() as mock_k8s:``,
    ``@mock_kubernetes``, ``@mock_kubernetes(nodes=3)``; see MockKubernetes
    for the options."""
    if (callable(initial_state) or inspect.isclass(initial_state)) and not options \
            and not isinstance(initial_state, (dict, list)):
        return MockKubernetes()(initial_state)
    return MockKubernetes(initial_state, **options)


patch_kubernetes = mock_kubernetes
