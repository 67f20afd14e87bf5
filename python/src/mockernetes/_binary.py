"""Finding the mockernetes server binary."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path
from typing import Optional

from .errors import BinaryNotFound

ENV_BINARY = "MOCKERNETES_BINARY"


def bundled_binary() -> Optional[Path]:
    """The binary inside the installed wheel, if there is one."""
    here = Path(__file__).resolve().parent / "_bin"
    for name in ("mockernetes", "mockernetes.exe"):
        p = here / name
        if p.is_file():
            if not os.access(p, os.X_OK):
                try:  # some installers drop the executable bit
                    p.chmod(p.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
                except OSError:
                    pass
            return p
    return None


def find_binary(explicit: Optional[str] = None) -> str:
    """The server binary: explicit, else $MOCKERNETES_BINARY, else the one in
    the wheel, else `mockernetes` on PATH."""
    for source, value in (("binary=", explicit), (ENV_BINARY, os.environ.get(ENV_BINARY))):
        if value:
            if not os.path.isfile(value):
                raise BinaryNotFound(f"mockernetes: {source} names {value!r}, which is not a file")
            return value
    bundled = bundled_binary()
    if bundled is not None:
        return str(bundled)
    on_path = shutil.which("mockernetes")
    if on_path:
        return on_path
    raise BinaryNotFound(
        "mockernetes: no server binary found: set MOCKERNETES_BINARY to its path (or pass "
        "--mockernetes-binary to pytest), install the platform wheel that carries it "
        "(pip install ./python on a machine with Go builds one), or put `mockernetes` on PATH")
