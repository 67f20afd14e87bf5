"""Mockernetes server processes: started on first use, shared by the
activations of one Python process, stopped at interpreter exit."""

from __future__ import annotations

import atexit
import copy
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Dict, Optional, Sequence, Tuple

import yaml
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config

from ._binary import find_binary
from ._control import Control
from ._state import Discovery
from .errors import ServerStartError

# How long a server may take to become ready (a cold start takes 1-3 s).
START_TIMEOUT = 120.0
# Servers with other options are started beside the default one; the least
# recently used beyond this many are stopped.
MAX_SERVERS = 3


class Server:
    """One `mockernetes serve` process, or an existing cluster (``external``)."""

    def __init__(self) -> None:
        self.process: Optional[subprocess.Popen] = None
        self.state_dir: Optional[str] = None
        self.kubeconfig: str = ""
        self.host: str = ""
        self.token: Optional[str] = None
        self.ca_file: Optional[str] = None
        self.external = False
        self._configuration: Optional[k8s_client.Configuration] = None
        self.control: Optional[Control] = None
        self._discovery: Optional[Discovery] = None
        # What the server's settings are now, to skip a request that changes nothing.
        self.settings: Dict[str, object] = {}
        self.active = None  # the activation using it, if any

    # Starting.

    @classmethod
    def start(cls, binary: str, args: Sequence[str]) -> "Server":
        s = cls()
        s.state_dir = tempfile.mkdtemp(prefix="mockernetes-py-")
        log_path = os.path.join(s.state_dir, "server.log")
        cmd = [binary, "serve", "--port", "0", "--state-dir", s.state_dir, *args]
        log = open(log_path, "wb")
        try:
            s.process = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log,
                preexec_fn=_die_with_parent if _can_die_with_parent() else None)
        except OSError as e:
            log.close()
            shutil.rmtree(s.state_dir, ignore_errors=True)
            raise ServerStartError(f"mockernetes: cannot run {binary}: {e}") from e
        log.close()
        line = _read_line(s.process, START_TIMEOUT)
        prefix = "export KUBECONFIG="
        if not line.startswith(prefix):
            s.stop()
            raise ServerStartError(
                f"mockernetes: the server ({' '.join(cmd)}) did not start:\n{_tail(log_path)}")
        s.kubeconfig = line[len(prefix):].strip()
        s.ca_file = os.path.join(s.state_dir, "ca.crt")
        with open(os.path.join(s.state_dir, "tokens.csv")) as f:
            s.token = f.read().split(",", 1)[0].strip()
        s._load_kubeconfig()
        s.control = Control(s._configuration)
        s.control.admin = True
        # In-cluster credentials, as a pod has them.
        sa = os.path.join(s.state_dir, "serviceaccount")
        os.makedirs(sa)
        with open(os.path.join(sa, "token"), "w") as f:
            f.write(s.token)
        shutil.copy(s.ca_file, os.path.join(sa, "ca.crt"))
        return s

    @classmethod
    def existing(cls, server: str) -> "Server":
        """A cluster given by a kubeconfig path or a URL."""
        s = cls()
        s.external = True
        if "://" in server:
            c = k8s_client.Configuration(host=server.rstrip("/"))
            s._configuration = c
            s.host = c.host
            # A kubeconfig for it too, for KUBECONFIG and load_kube_config().
            s.state_dir = tempfile.mkdtemp(prefix="mockernetes-py-")
            s.kubeconfig = os.path.join(s.state_dir, "kubeconfig")
            with open(s.kubeconfig, "w") as f:
                yaml.safe_dump({"apiVersion": "v1", "kind": "Config", "current-context": "mockernetes",
                                "clusters": [{"name": "mockernetes", "cluster": {"server": s.host}}],
                                "users": [{"name": "mockernetes", "user": {}}],
                                "contexts": [{"name": "mockernetes",
                                              "context": {"cluster": "mockernetes", "user": "mockernetes"}}]}, f)
        else:
            if not os.path.isfile(server):
                raise ServerStartError(f"mockernetes: server={server!r} is neither a URL nor a kubeconfig file")
            s.kubeconfig = os.path.abspath(server)
            s._load_kubeconfig()
        s.control = Control(s._configuration)
        s.control.admin = s.control.available()  # else no reset, faults, ...
        return s

    def _load_kubeconfig(self) -> None:
        c = k8s_client.Configuration()
        k8s_config.load_kube_config(config_file=self.kubeconfig, client_configuration=c, persist_config=False)
        self._configuration = c
        self.host = c.host

    def discovery(self) -> Discovery:
        """The resources the server serves (read once; CRDs come with the
        server's options, so they do not change between activations)."""
        if self._discovery is None:
            self._discovery = Discovery(self.control)
        return self._discovery

    def configuration(self) -> k8s_client.Configuration:
        """A fresh client configuration for this server."""
        return copy.deepcopy(self._configuration)

    @property
    def serviceaccount_dir(self) -> Optional[str]:
        if self.state_dir is None or self.external:
            return None
        return os.path.join(self.state_dir, "serviceaccount")

    @property
    def port(self) -> str:
        hostport = self.host.split("://", 1)[-1].split("/", 1)[0]
        return hostport.rsplit(":", 1)[1] if ":" in hostport else "443"

    @property
    def hostname(self) -> str:
        hostport = self.host.split("://", 1)[-1].split("/", 1)[0]
        host = hostport.rsplit(":", 1)[0] if ":" in hostport else hostport
        return host.strip("[]")

    def alive(self) -> bool:
        return self.external or (self.process is not None and self.process.poll() is None)

    def stop(self) -> None:
        p, self.process = self.process, None
        if p is not None and p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        if p is not None and p.stdout is not None:
            p.stdout.close()
        if self.state_dir:
            shutil.rmtree(self.state_dir, ignore_errors=True)
            self.state_dir = None


def _read_line(p: subprocess.Popen, timeout: float) -> str:
    """The first line the server prints, or "" if it exits or time runs out."""
    out = []
    t = threading.Thread(target=lambda: out.append(p.stdout.readline().decode(errors="replace")), daemon=True)
    t.start()
    t.join(timeout)
    if not out:
        p.kill()
        return ""
    return out[0]


def _tail(path: str, lines: int = 30) -> str:
    try:
        text = Path(path).read_text(errors="replace").strip().splitlines()
    except OSError:
        return "(no output)"
    return "\n".join(text[-lines:]) or "(no output)"


def _can_die_with_parent() -> bool:
    return sys.platform.startswith("linux") and threading.current_thread() is threading.main_thread()


def _die_with_parent() -> None:  # pragma: no cover - runs in the child
    # The server ends when this process does, even when it is killed.
    import ctypes

    PR_SET_PDEATHSIG = 1
    try:
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except Exception:
        pass


class Pool:
    """The servers of this process, by what they were started with."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._servers: "OrderedDict[Tuple, Server]" = OrderedDict()
        self._external: Dict[str, Server] = {}
        self._files_dir: Optional[str] = None
        atexit.register(self.stop_all)

    def get(self, binary: Optional[str], args: Sequence[str]) -> Server:
        path = find_binary(binary)
        key = (path, tuple(args))
        with self._lock:
            s = self._servers.get(key)
            if s is not None and not s.alive():
                s.stop()
                del self._servers[key]
                s = None
            if s is None:
                while len(self._servers) >= MAX_SERVERS:
                    _, old = next(iter(self._servers.items()))
                    if old.active is not None:
                        break
                    self._servers.popitem(last=False)
                    old.stop()
                s = Server.start(path, args)
                self._servers[key] = s
            self._servers.move_to_end(key)
            return s

    def existing(self, server: str) -> Server:
        with self._lock:
            s = self._external.get(server)
            if s is None:
                s = self._external[server] = Server.existing(server)
            return s

    def content_file(self, text: str) -> str:
        """A file holding text, named by its content (so that the same
        content gives the same server options)."""
        with self._lock:
            if self._files_dir is None:
                self._files_dir = tempfile.mkdtemp(prefix="mockernetes-py-files-")
            path = os.path.join(self._files_dir, hashlib.sha256(text.encode()).hexdigest()[:16] + ".yaml")
            if not os.path.exists(path):
                with open(path, "w") as f:
                    f.write(text)
            return path

    def stop_all(self) -> None:
        with self._lock:
            servers = list(self._servers.values()) + list(self._external.values())
            self._servers.clear()
            self._external.clear()
        for s in servers:
            s.stop()
        if self._files_dir:
            shutil.rmtree(self._files_dir, ignore_errors=True)


POOL = Pool()
