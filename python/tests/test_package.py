"""The package itself: Python 3.9 syntax, standard library only, torch loaded only to save,
one version everywhere, and an offline `pip install` that works."""
from __future__ import annotations

import ast
import base64
import hashlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import unittest
import zipfile

from _support import PYTHON_DIR, TempDirTestCase, run_python

PACKAGE_DIR = os.path.join(PYTHON_DIR, "ckptguard")
BACKEND_DIR = os.path.join(PYTHON_DIR, "_build")
MODULES = sorted(os.path.join(d, n) for d in (PACKAGE_DIR, BACKEND_DIR) for n in os.listdir(d) if n.endswith(".py"))


def parsed(path: str, **kwargs) -> ast.Module:
    with open(path, encoding="utf-8") as f:
        return ast.parse(f.read(), path, **kwargs)


def _has_pip() -> bool:
    return subprocess.run([sys.executable, "-m", "pip", "--version"], stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL, check=False).returncode == 0


class PackageTest(TempDirTestCase):
    def test_every_module_is_python_3_9_syntax(self) -> None:
        for path in MODULES:
            parsed(path, feature_version=(3, 9))

    @unittest.skipUnless(hasattr(sys, "stdlib_module_names"), "needs Python 3.10+ to list the standard library")
    def test_imports_only_the_standard_library_and_torch(self) -> None:
        allowed = set(sys.stdlib_module_names) | {"torch"}
        for path in MODULES:
            for node in ast.walk(parsed(path)):
                names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                         else [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 else [])
                for name in names:
                    self.assertIn(name.split(".")[0], allowed, f"{os.path.basename(path)} imports {name}")

    def test_importing_the_package_does_not_import_torch(self) -> None:
        result = run_python("import sys, ckptguard; print('torch' in sys.modules)")
        self.assertEqual(result.stdout.strip(), "False", result.stderr)

    def test_the_version_matches_pyproject_and_package_json(self) -> None:
        import ckptguard

        with open(os.path.join(PYTHON_DIR, "pyproject.toml"), encoding="utf-8") as f:
            pyproject_version = re.search(r'^version = "([^"]+)"$', f.read(), re.MULTILINE).group(1)
        with open(os.path.join(PYTHON_DIR, os.pardir, "package.json"), encoding="utf-8") as f:
            npm_version = json.load(f)["version"]
        self.assertEqual(ckptguard.__version__, pyproject_version)
        self.assertEqual(ckptguard.__version__, npm_version)

    def test_every_public_name_has_a_docstring(self) -> None:
        import ckptguard

        for name in ckptguard.__all__:
            self.assertTrue((getattr(ckptguard, name).__doc__ or "").strip(), name)

    def backend(self):
        spec = importlib.util.spec_from_file_location("ckptguard_backend", os.path.join(BACKEND_DIR, "ckptguard_backend.py"))
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    def test_the_build_backend_writes_a_wheel_of_the_package_with_a_correct_record(self) -> None:
        import ckptguard

        name = self.backend().build_wheel(self.dir)
        self.assertEqual(name, f"ckptguard-{ckptguard.__version__}-py3-none-any.whl")
        with zipfile.ZipFile(self.path(name)) as wheel:
            names = set(wheel.namelist())
            expected = {f"ckptguard/{n}" for n in os.listdir(PACKAGE_DIR) if n.endswith(".py") or n == "py.typed"}
            dist_info = f"ckptguard-{ckptguard.__version__}.dist-info"
            self.assertEqual(names, expected | {f"{dist_info}/{n}" for n in ("METADATA", "WHEEL", "RECORD")})
            metadata = wheel.read(f"{dist_info}/METADATA").decode()
            self.assertIn(f"Version: {ckptguard.__version__}\n", metadata)
            self.assertIn("Requires-Python: >=3.9\n", metadata)
            self.assertNotIn("Requires-Dist: torch\n", metadata, "torch is an extra, never required")
            for line in wheel.read(f"{dist_info}/RECORD").decode().splitlines():
                path, digest, size = line.split(",")
                if path.endswith("RECORD"):
                    continue
                data = wheel.read(path)
                self.assertEqual(digest, "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode())
                self.assertEqual(int(size), len(data))

    def test_the_build_backend_writes_an_sdist_that_can_build_again(self) -> None:
        import ckptguard

        name = self.backend().build_sdist(self.dir)
        with tarfile.open(self.path(name)) as sdist:
            names = set(sdist.getnames())
        base = f"ckptguard-{ckptguard.__version__}"
        for required in ("pyproject.toml", "README.md", "PKG-INFO", "_build/ckptguard_backend.py", "ckptguard/__init__.py", "ckptguard/py.typed"):
            self.assertIn(f"{base}/{required}", names)
        self.assertFalse(any("/tests/" in n for n in names))

    @unittest.skipUnless(_has_pip(), "pip is not available")
    def test_pip_installs_it_offline_with_no_build_dependencies(self) -> None:
        source = self.path("src")
        shutil.copytree(PYTHON_DIR, source, ignore=shutil.ignore_patterns("tests", "__pycache__"))
        target = self.path("site")
        # --no-index: nothing may come from an index, as on a machine without network.
        result = subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--no-index", "--no-deps", "--disable-pip-version-check",
             "--target", target, source],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=300, check=False)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertTrue(os.path.isfile(os.path.join(target, "ckptguard", "py.typed")))
        self.assertEqual(sorted(os.listdir(source)), sorted(n for n in os.listdir(PYTHON_DIR) if n not in ("tests", "__pycache__")),
                         "building leaves nothing behind in the source folder")
        check = subprocess.run(
            [sys.executable, "-c", "import ckptguard; print(ckptguard.__file__)"], cwd=self.dir,
            env={**os.environ, "PYTHONPATH": target}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, check=False)
        self.assertEqual(check.returncode, 0, check.stderr)
        self.assertTrue(check.stdout.strip().startswith(target), check.stdout)


if __name__ == "__main__":
    unittest.main()
