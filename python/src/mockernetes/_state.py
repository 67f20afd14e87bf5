"""Initial state and manifests: from the forms a test writes them in (a dict
by plural resource names, model objects, snake_case dicts, YAML files) to
API objects."""

from __future__ import annotations

import datetime
import os
import re
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Tuple, Union

import yaml
from kubernetes import client as k8s_client

from .errors import MockernetesError

DISCOVERY_ACCEPT = ("application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,"
                    "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList")


class Resource:
    __slots__ = ("group", "version", "plural", "kind", "namespaced", "short_names")

    def __init__(self, group: str, version: str, plural: str, kind: str, namespaced: bool, short_names: List[str]):
        self.group, self.version, self.plural, self.kind = group, version, plural, kind
        self.namespaced, self.short_names = namespaced, short_names

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(self, namespace: Optional[str], name: Optional[str] = None) -> str:
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced:
            base += f"/namespaces/{namespace or 'default'}"
        base += "/" + self.plural
        return base + ("/" + name if name else "")


class Discovery:
    """The resources a server serves (preferred versions first), read once."""

    def __init__(self, control) -> None:
        self._by_name: Dict[str, Resource] = {}
        self._by_kind: Dict[Tuple[str, str], Resource] = {}
        for root in ("/api", "/apis"):
            doc = control.api("GET", root, accept=DISCOVERY_ACCEPT)
            for group in doc.get("items") or []:
                gname = group.get("metadata", {}).get("name", "")
                for i, version in enumerate(group.get("versions") or []):
                    for r in version.get("resources") or []:
                        kind = (r.get("responseKind") or {}).get("kind", "")
                        res = Resource(gname, version["version"], r["resource"], kind,
                                       r.get("scope") == "Namespaced", r.get("shortNames") or [])
                        self._by_kind.setdefault((res.api_version, kind), res)
                        if i == 0:  # the preferred version names the resource
                            for n in [res.plural, *res.short_names, f"{res.plural}.{gname}"]:
                                self._by_name.setdefault(n, res)

    def by_name(self, key: str) -> Resource:
        """A resource by a name a test may write: plural ("deployments"),
        snake_case ("service_accounts"), short ("pvc", "pvcs"), or
        plural.group ("httproutes.gateway.networking.k8s.io")."""
        k = key.lower()
        for cand in (k, k.replace("_", ""), k.replace("_", "").rstrip("s"), k.replace("-", "")):
            if cand in self._by_name:
                return self._by_name[cand]
        raise MockernetesError(f"initial_state: the server serves no resource {key!r}")

    def by_kind(self, api_version: str, kind: str) -> Resource:
        r = self._by_kind.get((api_version, kind))
        if r is None:
            raise MockernetesError(f"the server serves no kind {kind} in {api_version}")
        return r


PathLike = Union[str, os.PathLike]


def _model_class(api_version: str, kind: str):
    version = api_version.rsplit("/", 1)[-1]
    return getattr(k8s_client, version[:1].upper() + version[1:] + kind, None)


_CONTAINER = re.compile(r"^(list|dict)\[(.*)\]$|^dict\((?:[^,]*),\s*(.*)\)$")


def _to_api(value: Any, type_name: Optional[str]) -> Any:
    """value as the API's JSON: model objects serialized, snake_case keys of
    the client's models (as V1Pod(**kwargs) takes them) turned into the
    API's camelCase ones, guided by the model's types; other dicts and
    values as they are."""
    if value is None:
        return None
    if hasattr(value, "openapi_types") and hasattr(value, "attribute_map") and not isinstance(value, type):
        return _serialize(value)
    if isinstance(value, (datetime.datetime, datetime.date)):
        return value.isoformat()
    if type_name:
        m = _CONTAINER.match(type_name)
        if m:
            if m.group(1) == "list" and isinstance(value, list):
                return [_to_api(v, m.group(2)) for v in value]
            inner = m.group(2) if m.group(1) == "dict" else m.group(3)
            if isinstance(value, dict):
                return {k: _to_api(v, inner) for k, v in value.items()}
            return value
        cls = getattr(k8s_client, type_name, None)
        if cls is not None and isinstance(value, dict) and hasattr(cls, "attribute_map"):
            json_names = set(cls.attribute_map.values())
            back = {v: k for k, v in cls.attribute_map.items()}
            out = {}
            for k, v in value.items():
                if k in json_names:
                    out[k] = _to_api(v, cls.openapi_types.get(back[k]))
                elif k in cls.attribute_map:
                    out[cls.attribute_map[k]] = _to_api(v, cls.openapi_types.get(k))
                else:
                    out[k] = _to_api(v, None)
            return out
    if isinstance(value, list):
        return [_to_api(v, None) for v in value]
    if isinstance(value, dict):
        return {k: _to_api(v, None) for k, v in value.items()}
    return value


_API_CLIENT = None


def _serialize(model: Any) -> Any:
    global _API_CLIENT
    if _API_CLIENT is None:
        _API_CLIENT = k8s_client.ApiClient(k8s_client.Configuration())
    return _API_CLIENT.sanitize_for_serialization(model)


def _object(value: Any, resource: Optional[Resource], where: str) -> Dict[str, Any]:
    """One object as the API's JSON, apiVersion and kind filled in from
    its resource when missing."""
    if hasattr(value, "openapi_types") and not isinstance(value, dict):
        obj = _serialize(value)
    elif isinstance(value, dict):
        obj = dict(value)
        if "api_version" in obj and "apiVersion" not in obj:
            obj["apiVersion"] = obj.pop("api_version")
    else:
        raise MockernetesError(f"{where}: {type(value).__name__} is not an object (a dict or a client model)")
    if resource is not None:
        obj.setdefault("apiVersion", resource.api_version)
        obj.setdefault("kind", resource.kind)
    if not obj.get("apiVersion") or not obj.get("kind"):
        raise MockernetesError(f"{where}: the object has no apiVersion and kind, and nothing says which resource it is")
    model = _model_class(obj["apiVersion"], obj["kind"])
    obj = _to_api(obj, model.__name__ if model is not None else None)
    if not isinstance(obj.get("metadata"), dict) or not obj["metadata"].get("name"):
        raise MockernetesError(f"{where}: metadata.name is required")
    return obj


def _files(path: PathLike) -> List[Path]:
    p = Path(path)
    if p.is_dir():
        return sorted(f for f in p.rglob("*") if f.suffix in (".yaml", ".yml", ".json") and f.is_file())
    if p.is_file():
        return [p]
    raise MockernetesError(f"manifests: {os.fspath(path)!r} is neither a file nor a directory")


class Manifests:
    """Objects to create, as YAML documents (files are kept as they are
    written; the server reads them as --load does)."""

    def __init__(self) -> None:
        self.objects: List[Dict[str, Any]] = []
        self.texts: List[Tuple[str, str]] = []  # (file name, YAML)

    def __bool__(self) -> bool:
        return bool(self.objects or self.texts)

    def yaml(self) -> str:
        docs = [yaml.safe_dump(o, sort_keys=False) for o in self.objects]
        docs += [t for _, t in self.texts]
        return "\n---\n".join(docs)

    def documents(self) -> List[Dict[str, Any]]:
        out = list(self.objects)
        for name, text in self.texts:
            try:
                out += [d for d in yaml.safe_load_all(text) if d]
            except yaml.YAMLError as e:
                raise MockernetesError(f"{name}: {e}") from e
        return out

    def add(self, source: Any, discovery_fn, where: str) -> None:
        """source: a dict by resource names, a list of objects or paths, one
        object, or a path."""
        if source is None:
            return
        if isinstance(source, (str, os.PathLike)):
            if isinstance(source, str) and "\n" in source:
                self.texts.append((where, source))
                return
            for f in _files(source):
                self.texts.append((str(f), f.read_text()))
            return
        if isinstance(source, dict) and not ("kind" in source and "metadata" in source):
            discovery = discovery_fn()
            for key, items in source.items():
                res = discovery.by_name(key)
                if isinstance(items, (dict, str)) or not isinstance(items, Iterable):
                    items = [items]
                for i, item in enumerate(items):
                    w = f"{where}[{key!r}][{i}]"
                    if isinstance(item, str) and res.plural == "namespaces":
                        item = {"metadata": {"name": item}}
                    self.objects.append(_object(item, res, w))
            return
        if isinstance(source, (list, tuple)):
            for i, item in enumerate(source):
                self.add(item, discovery_fn, f"{where}[{i}]")
            return
        self.objects.append(_object(source, None, where))


def apply(control, discovery: Discovery, docs: List[Dict[str, Any]]) -> None:
    """Apply docs with server-side apply, namespaces and CRDs first (for a
    server without the test-control API, which loads them itself)."""
    def order(d):
        k = d.get("kind")
        return 0 if k == "CustomResourceDefinition" else 1 if k == "Namespace" else 2
    for d in sorted(docs, key=order):
        res = discovery.by_kind(d["apiVersion"], d["kind"])
        meta = d["metadata"]
        path = res.path(meta.get("namespace"), meta["name"]) + "?fieldManager=mockernetes&force=true"
        control.api("PATCH", path, body=d, content_type="application/apply-patch+yaml")
