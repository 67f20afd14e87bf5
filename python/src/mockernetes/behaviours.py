"""Pod behaviours in Python terms: what the simulated kubelet makes of the
containers a rule matches. Each maps onto one rule of the server's
podBehaviours (the same as the cluster config file's and the
mockernetes.io/ pod annotations', which keep working and win over rules).

    PodBehaviour.crash_loop(exit_code=1, logs=["boom"], labels={"app": "web"})
    PodBehaviour.image_pull_failure(image="registry.example/*")
    PodBehaviour(ready_delay=2, container="runtime")
    PodBehaviour.exec("pg_isready*", stdout="accepting connections\n", image="postgres*")
    PodBehaviour.port_forward(8080, "127.0.0.1:18080", labels={"app": "api"})
"""

from __future__ import annotations

from typing import Any, Dict, Mapping, Optional, Sequence, Union

Duration = Union[int, float, str]
Labels = Union[str, Mapping[str, str], None]


def _duration(v: Optional[Duration]) -> Optional[str]:
    if v is None:
        return None
    if isinstance(v, str):
        return v
    if v < 0:
        raise ValueError(f"a duration cannot be negative: {v}")
    return f"{v}s"


def _labels(v: Labels) -> Optional[str]:
    if v is None or isinstance(v, str):
        return v
    return ",".join(f"{k}={val}" for k, val in v.items())


class PodBehaviour:
    """What matching containers do. Match on pod labels (a selector string
    or a dict), container image (a glob), container name and namespace;
    nothing given matches every container. Durations are seconds or Go
    duration strings ("1.5s", "200ms")."""

    def __init__(self, *, labels: Labels = None, image: Optional[str] = None,
                 container: Optional[str] = None, namespace: Optional[str] = None,
                 name: Optional[str] = None,
                 start_delay: Optional[Duration] = None, ready_delay: Optional[Duration] = None,
                 never_ready: Optional[bool] = None, exit_code: Optional[int] = None,
                 exit_after: Optional[Duration] = None, oom_killed: Optional[bool] = None,
                 image_pull_fails: Optional[bool] = None, logs: Optional[Sequence[str]] = None,
                 restart_backoff: Optional[Duration] = None,
                 honor_grace_period: Optional[bool] = None,
                 exec: Optional[Sequence[Mapping[str, Any]]] = None,
                 stdin: Optional[str] = None,
                 port_forward: Optional[Sequence[Mapping[str, Any]]] = None) -> None:
        self.match = {k: v for k, v in {"labels": _labels(labels), "image": image, "name": name,
                                        "container": container, "namespace": namespace}.items() if v}
        b: Dict[str, Any] = {
            "startDelay": _duration(start_delay), "readyDelay": _duration(ready_delay),
            "neverReady": never_ready, "exitCode": exit_code, "exitAfter": _duration(exit_after),
            "oomKilled": oom_killed, "imagePull": "fail" if image_pull_fails else None,
            "logs": list(logs) if logs is not None else None,
            "restartBackoff": _duration(restart_backoff), "honorGracePeriod": honor_grace_period,
            "exec": [dict(e) for e in exec] if exec is not None else None, "stdin": stdin,
            "portForward": [dict(f) for f in port_forward] if port_forward is not None else None,
        }
        self.behaviour = {k: v for k, v in b.items() if v is not None}

    # The behaviours tests ask for most, by name.

    @classmethod
    def crash_loop(cls, exit_code: int = 1, *, logs: Optional[Sequence[str]] = None,
                   after: Duration = 0, backoff: Duration = "1s", **match: Any) -> "PodBehaviour":
        """The container exits with exit_code `after` seconds after each start,
        printing logs; the kubelet restarts it with a back-off starting at
        `backoff` and doubling (CrashLoopBackOff)."""
        return cls(exit_code=exit_code, exit_after=after, logs=logs, restart_backoff=backoff, **match)

    @classmethod
    def oom_killed(cls, *, after: Duration = 0, **match: Any) -> "PodBehaviour":
        """The container is killed for memory (OOMKilled, exit code 137)."""
        return cls(oom_killed=True, exit_after=after, **match)

    @classmethod
    def image_pull_failure(cls, **match: Any) -> "PodBehaviour":
        """The image cannot be pulled: ErrImagePull, then ImagePullBackOff;
        the pod stays Pending."""
        return cls(image_pull_fails=True, **match)

    @classmethod
    def delays(cls, *, start: Optional[Duration] = None, ready: Optional[Duration] = None,
               **match: Any) -> "PodBehaviour":
        """Containers stay ContainerCreating for `start`, then become ready
        `ready` after they started."""
        return cls(start_delay=start, ready_delay=ready, **match)

    @classmethod
    def never_ready(cls, **match: Any) -> "PodBehaviour":
        """Containers run but never become ready."""
        return cls(never_ready=True, **match)

    @classmethod
    def with_logs(cls, lines: Sequence[str], **match: Any) -> "PodBehaviour":
        """The lines the container prints (its log)."""
        return cls(logs=lines, **match)

    @classmethod
    def exec(cls, command: str, *, stdout: str = "", stderr: str = "", exit_code: int = 0,
             **match: Any) -> "PodBehaviour":
        """`kubectl exec` (and the client's stream()) of `command` in a
        matching container answers stdout, stderr and exit_code. command is
        the words joined by spaces, exactly, or a glob (* any text).
        Commands no rule answers run in a simulated shell (echo, cat, sh -c
        ...); unknown programs exit 127."""
        return cls(exec=[{"command": command, "stdout": stdout, "stderr": stderr, "exitCode": exit_code}], **match)

    @classmethod
    def port_forward(cls, port: int, address: str, **match: Any) -> "PodBehaviour":
        """Connections to the pod's `port` (port-forward, pods/proxy,
        services/proxy) reach `address` ("127.0.0.1:18080"), where the test
        listens; port 0 forwards every port."""
        return cls(port_forward=[{"port": port, "address": address}], **match)

    def to_rule(self) -> Dict[str, Any]:
        """The server's rule (podBehaviours[] of the cluster config)."""
        return {"match": dict(self.match), "behaviour": dict(self.behaviour)}

    def __repr__(self) -> str:
        return f"PodBehaviour(match={self.match!r}, behaviour={self.behaviour!r})"


def to_rules(behaviours: Any) -> list:
    """Rules from PodBehaviour objects or rule dicts as the server takes them."""
    if behaviours is None:
        return []
    if isinstance(behaviours, (PodBehaviour, dict)):
        behaviours = [behaviours]
    rules = []
    for b in behaviours:
        if isinstance(b, PodBehaviour):
            rules.append(b.to_rule())
        elif isinstance(b, dict):
            rules.append(b)
        else:
            raise TypeError(f"pod_behaviours: {b!r} is neither a PodBehaviour nor a rule dict")
    return rules
