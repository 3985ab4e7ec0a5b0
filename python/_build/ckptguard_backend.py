"""A PEP 517 build backend for the companion, in the standard library alone.

`pip install <this folder>` works offline: pip's isolated build environment needs nothing
from an index (pyproject.toml `requires = []`), where setuptools would have to be downloaded
into it first. The package is pure Python, so a wheel is a zip of ckptguard/ plus the three
dist-info files of the wheel spec (PEP 427, PEP 376 RECORD, core metadata 2.1).
"""
from __future__ import annotations

import base64
import hashlib
import io
import os
import re
import tarfile
import zipfile
from typing import Dict, List, Optional, Tuple

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = "ckptguard"
TAG = "py3-none-any"


def _project() -> Dict[str, str]:
    """`key = "value"` lines of pyproject.toml's [project] table (all this backend needs)."""
    with open(os.path.join(ROOT, "pyproject.toml"), encoding="utf-8") as f:
        text = f.read()
    table = re.search(r"^\[project\]\n(.*?)(?=^\[|\Z)", text, re.MULTILINE | re.DOTALL)
    if table is None:
        raise RuntimeError("pyproject.toml has no [project] table")
    return dict(re.findall(r'^([a-z-]+) = "([^"]*)"$', table.group(1), re.MULTILINE))


def _metadata() -> str:
    project = _project()
    with open(os.path.join(ROOT, project.get("readme", "README.md")), encoding="utf-8") as f:
        readme = f.read()
    return (f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: {project['version']}\n"
            f"Summary: {project['description']}\nLicense: MIT\nRequires-Python: {project['requires-python']}\n"
            f"Provides-Extra: torch\nRequires-Dist: torch; extra == \"torch\"\n"
            f"Description-Content-Type: text/markdown\n\n{readme}")


def _dist_info() -> str:
    project = _project()
    return f"{project['name']}-{project['version']}.dist-info"


def _package_files() -> List[Tuple[str, bytes]]:
    files = []
    for name in sorted(os.listdir(os.path.join(ROOT, PACKAGE))):
        if name.endswith(".py") or name == "py.typed":
            with open(os.path.join(ROOT, PACKAGE, name), "rb") as f:
                files.append((f"{PACKAGE}/{name}", f.read()))
    return files


def _write_wheel(directory: str, files: List[Tuple[str, bytes]]) -> str:
    project = _project()
    dist_info = _dist_info()
    files = files + [
        (f"{dist_info}/METADATA", _metadata().encode("utf-8")),
        (f"{dist_info}/WHEEL", f"Wheel-Version: 1.0\nGenerator: ckptguard_backend\nRoot-Is-Purelib: true\nTag: {TAG}\n".encode()),
    ]
    record = "".join(f"{path},sha256={_digest(data)},{len(data)}\n" for path, data in files) + f"{dist_info}/RECORD,,\n"
    name = f"{project['name']}-{project['version']}-{TAG}.whl"
    with zipfile.ZipFile(os.path.join(directory, name), "w", zipfile.ZIP_DEFLATED) as wheel:
        for path, data in files + [(f"{dist_info}/RECORD", record.encode())]:
            wheel.writestr(zipfile.ZipInfo(path, date_time=(1980, 1, 1, 0, 0, 0)), data)
    return name


def _digest(data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode("ascii")


# PEP 517 hooks


def build_wheel(wheel_directory: str, config_settings: Optional[dict] = None,
                metadata_directory: Optional[str] = None) -> str:
    return _write_wheel(wheel_directory, _package_files())


def build_editable(wheel_directory: str, config_settings: Optional[dict] = None,
                   metadata_directory: Optional[str] = None) -> str:
    """PEP 660: a wheel whose .pth file puts this folder on sys.path."""
    return _write_wheel(wheel_directory, [(f"{PACKAGE}.pth", (ROOT + "\n").encode("utf-8"))])


def build_sdist(sdist_directory: str, config_settings: Optional[dict] = None) -> str:
    project = _project()
    base = f"{project['name']}-{project['version']}"
    members = [("pyproject.toml", None), ("README.md", None), ("_build/ckptguard_backend.py", None)]
    members += [(path, data) for path, data in _package_files()]
    with tarfile.open(os.path.join(sdist_directory, f"{base}.tar.gz"), "w:gz", format=tarfile.PAX_FORMAT) as sdist:
        for path, data in members + [("PKG-INFO", _metadata().encode("utf-8"))]:
            if data is None:
                with open(os.path.join(ROOT, path), "rb") as f:
                    data = f.read()
            info = tarfile.TarInfo(f"{base}/{path}")
            info.size = len(data)
            info.mode = 0o644
            sdist.addfile(info, io.BytesIO(data))
    return f"{base}.tar.gz"
