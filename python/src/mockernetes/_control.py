"""The server's test-control API (/mockernetes/v1/...) over HTTPS with the
client configuration's credentials."""

from __future__ import annotations

import json
from typing import Any, Dict, List, Optional
from urllib.parse import urlencode

import urllib3

from .errors import MockernetesError, SettleTimeout

PREFIX = "/mockernetes/v1"


class Control:
    def __init__(self, configuration) -> None:
        c = configuration
        # Whether the server speaks the test-control API (a Mockernetes).
        self.admin = False
        self.host = c.host.rstrip("/")
        kw: Dict[str, Any] = {"maxsize": 4}
        if self.host.startswith("https://"):
            if c.verify_ssl:
                kw["cert_reqs"] = "CERT_REQUIRED"
                if c.ssl_ca_cert:
                    kw["ca_certs"] = c.ssl_ca_cert
            else:
                kw["cert_reqs"] = "CERT_NONE"
            if c.cert_file:
                kw["cert_file"] = c.cert_file
            if c.key_file:
                kw["key_file"] = c.key_file
        self._http = urllib3.PoolManager(**kw)
        self._headers: Dict[str, str] = {}
        auth = None
        for name in ("authorization", "BearerToken"):
            try:
                auth = c.get_api_key_with_prefix(name)
            except Exception:  # older clients take one argument only
                auth = None
            if auth:
                break
        if auth:
            self._headers["Authorization"] = auth if " " in auth else "Bearer " + auth

    def api(self, method: str, path: str, body: Any = None, content_type: str = "application/json",
            accept: str = "application/json", timeout: float = 60.0) -> Any:
        """A request to the Kubernetes API itself; raises MockernetesError on failure."""
        headers = dict(self._headers)
        headers["Accept"] = accept
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = content_type
        try:
            r = self._http.request(method, self.host + path, body=data, headers=headers, timeout=timeout, retries=False)
        except urllib3.exceptions.HTTPError as e:
            raise MockernetesError(f"{method} {path}: {e}") from e
        if r.status >= 300:
            raise MockernetesError(f"{method} {path}: {r.status}: {_message(r)}")
        return json.loads(r.data) if r.data else None

    def request(self, method: str, path: str, query: Optional[Dict[str, Any]] = None,
                body: Any = None, raw: bool = False, timeout: float = 60.0) -> Any:
        """A request to the test-control API (path under /mockernetes/v1)."""
        url = self.host + PREFIX + path
        if query:
            url += "?" + urlencode({k: v for k, v in query.items() if v is not None}, doseq=True)
        headers = dict(self._headers)
        data = None
        if body is not None:
            if isinstance(body, (bytes, str)):
                data = body.encode() if isinstance(body, str) else body
                headers["Content-Type"] = "application/yaml"
            else:
                data = json.dumps(body).encode()
                headers["Content-Type"] = "application/json"
        try:
            r = self._http.request(method, url, body=data, headers=headers, timeout=timeout, retries=False)
        except urllib3.exceptions.HTTPError as e:
            raise MockernetesError(f"mockernetes: {method} {PREFIX}{path}: {e}") from e
        if r.status >= 300:
            if r.status == 504 and path == "/settle":
                raise SettleTimeout(_message(r))
            raise MockernetesError(f"mockernetes: {method} {PREFIX}{path}: {r.status}: {_message(r)}")
        if raw:
            return r.data.decode()
        if not r.data:
            return None
        try:
            return json.loads(r.data)
        except ValueError:
            return r.data.decode()

    def available(self) -> bool:
        """Whether the server speaks the test-control API."""
        try:
            self.request("GET", "/settings", timeout=5)
            return True
        except MockernetesError:
            return False

    def settle(self, timeout: float) -> None:
        self.request("POST", "/settle", {"timeout": f"{timeout}s"}, timeout=timeout + 30)

    def reset(self, body: Dict[str, Any], timeout: float = 60.0) -> None:
        self.request("POST", "/reset", {"timeout": f"{timeout}s"}, body=body, timeout=timeout + 30)

    def settings(self, changes: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
        if changes is None:
            return self.request("GET", "/settings")
        return self.request("PUT", "/settings", body=changes)

    def set_faults(self, rules: List[Dict[str, Any]]) -> None:
        self.request("PUT", "/faults", body={"faults": rules})

    def faults(self) -> List[Dict[str, Any]]:
        return self.request("GET", "/faults").get("faults") or []

    def clear_faults(self) -> None:
        self.request("DELETE", "/faults")

    def requests(self, query: Dict[str, Any]) -> List[Dict[str, Any]]:
        return self.request("GET", "/requests", query).get("requests") or []

    def clear_requests(self) -> None:
        self.request("DELETE", "/requests")

    def set_pod_behaviours(self, rules: List[Dict[str, Any]]) -> None:
        self.request("PUT", "/podbehaviours", body={"podBehaviours": rules})

    def pod_behaviours(self) -> List[Dict[str, Any]]:
        return self.request("GET", "/podbehaviours").get("podBehaviours") or []

    def snapshot(self) -> str:
        return self.request("GET", "/snapshot", raw=True)

    def restore(self, snapshot: str) -> None:
        self.request("PUT", "/snapshot", body=snapshot)


def _message(r) -> str:
    """The message of a Status body, else the body."""
    text = r.data.decode(errors="replace")
    try:
        return json.loads(text).get("message", text)
    except (ValueError, AttributeError):
        return text
