"""The package itself: Python 3.9 syntax, standard library only, torch loaded only to save,
one version everywhere, and an offline `pip install` that works."""
from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys
import unittest

from _support import PYTHON_DIR, TempDirTestCase, run_python

PACKAGE_DIR = os.path.join(PYTHON_DIR, "ckptguard")
MODULES = sorted(os.path.join(PACKAGE_DIR, n) for n in os.listdir(PACKAGE_DIR) if n.endswith(".py"))


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

    @unittest.skipUnless(_has_pip(), "pip is not available")
    def test_pip_installs_it_offline(self) -> None:
        # From a copy: a setuptools build writes build/ and *.egg-info/ beside pyproject.toml.
        source = self.path("src")
        shutil.copytree(PYTHON_DIR, source, ignore=shutil.ignore_patterns("tests", "__pycache__", "build", "*.egg-info"))
        target = self.path("site")
        result = subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--no-index", "--no-deps", "--no-build-isolation",
             "--disable-pip-version-check", "--target", target, source],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=300, check=False)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertTrue(os.path.isfile(os.path.join(target, "ckptguard", "py.typed")))
        check = subprocess.run(
            [sys.executable, "-c", "import ckptguard; print(ckptguard.__file__)"], cwd=self.dir,
            env={**os.environ, "PYTHONPATH": target}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, check=False)
        self.assertEqual(check.returncode, 0, check.stderr)
        self.assertTrue(check.stdout.strip().startswith(target), check.stdout)


if __name__ == "__main__":
    unittest.main()
