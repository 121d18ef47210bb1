"""The integrations stay optional: ``import mailwire`` loads neither Django nor Celery, and an
integration whose package is missing says which extra to install."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from tests.support.django_envs import ROOT


def _python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT,
                          env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"},
                          capture_output=True, text=True, timeout=60)


def test_import_mailwire_loads_no_framework() -> None:
    finished = _python("""
        import sys
        import mailwire, mailwire.pool, mailwire.integrations.logging
        loaded = sorted(name for name in sys.modules
                        if name.split(".")[0] in {"django", "celery", "kombu", "redis"})
        print(loaded)
    """)
    assert finished.returncode == 0, finished.stderr
    assert finished.stdout.strip() == "[]"


@pytest.mark.parametrize("module, package, extra", [
    ("mailwire.integrations.django", "django", "django"),
    ("mailwire.integrations.celery", "celery", "celery"),
])
def test_a_missing_extra_names_what_to_install(module: str, package: str, extra: str) -> None:
    finished = _python(f"""
        import sys
        class Missing:
            def find_spec(self, name, path=None, target=None):
                if name == {package!r} or name.startswith({package!r} + "."):
                    raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        sys.meta_path.insert(0, Missing())
        import {module}
    """)
    assert finished.returncode != 0
    assert f"pip install 'mailwire[{extra}]'" in finished.stderr
