"""Build hook: compile the mockernetes server into the wheel.

The wheel is a platform wheel (py3-none-<platform>) that carries the
binary at mockernetes/_bin/mockernetes, built with `go build` from the
repository this directory belongs to. Environment:

  GO                          the go command (default: go on PATH)
  GOOS, GOARCH                cross-compile, as go build reads them; set
  MOCKERNETES_WHEEL_PLATFORM  to the matching wheel platform tag then
                              (e.g. macosx_11_0_arm64)
  MOCKERNETES_SKIP_BINARY=1   build a pure wheel without the binary (the
                              package then finds it through
                              MOCKERNETES_BINARY or PATH)
"""

import os
import shutil
import subprocess
import sysconfig
import tempfile
from pathlib import Path

from hatchling.builders.hooks.plugin.interface import BuildHookInterface


class GoBinaryHook(BuildHookInterface):
    PLUGIN_NAME = "custom"

    def initialize(self, version, build_data):
        if self.target_name != "wheel" or os.environ.get("MOCKERNETES_SKIP_BINARY"):
            return
        repo = Path(self.root).resolve().parent
        if not (repo / "go.mod").is_file() or not (repo / "cmd" / "mockernetes").is_dir():
            raise RuntimeError(
                f"mockernetes: the server's Go source is not at {repo} (the wheel is built from "
                "python/ inside a mockernetes checkout); set MOCKERNETES_SKIP_BINARY=1 to build "
                "a wheel without the server")
        go = os.environ.get("GO") or shutil.which("go")
        if not go:
            raise RuntimeError(
                "mockernetes: building the wheel needs Go (the `go` command, or GO=/path/to/go) to "
                "compile the server; set MOCKERNETES_SKIP_BINARY=1 to build a wheel without it")
        goos = os.environ.get("GOOS") or _go_env(go, "GOOS", repo)
        name = "mockernetes.exe" if goos == "windows" else "mockernetes"
        self._tmp = tempfile.mkdtemp(prefix="mockernetes-wheel-")
        out = os.path.join(self._tmp, name)
        subprocess.run([go, "build", "-o", out, "./cmd/mockernetes"], cwd=repo, check=True)
        os.chmod(out, 0o755)
        build_data["force_include"][out] = f"mockernetes/_bin/{name}"
        build_data["pure_python"] = False
        platform = os.environ.get("MOCKERNETES_WHEEL_PLATFORM") or sysconfig.get_platform()
        build_data["tag"] = "py3-none-" + platform.replace("-", "_").replace(".", "_")

    def finalize(self, version, build_data, artifact_path):
        tmp = getattr(self, "_tmp", None)
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)


def _go_env(go, key, cwd):
    return subprocess.run([go, "env", key], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()
