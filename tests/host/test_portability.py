"""Portability gates: the firmware must run on the ESP32, not just on the unix port.

* every firmware file compiles with `mpy-cross -march=xtensawin`;
* firmware code type-checks with pyright against the MicroPython ESP32 stubs
  (pyrightconfig.json; board/sim.py, the one unix-only module, is excluded);
* every module a firmware file imports exists on the ESP32 (a project module, or a module
  of the ESP32 stubs), and so does every name taken `from` an ESP32 module.
"""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import firmware_files as fw

FILES = fw.firmware_files()
ESP32_FILES = [f for f in FILES if f != fw.SIM]


def venv_tool(name: str) -> str:
    """A console script of the venv running the tests (else from PATH); fail if missing."""
    here = Path(sys.executable).parent  # not resolved: that is the venv's bin/
    found = shutil.which(name, path=str(here)) or shutil.which(name)
    if not found:
        pytest.fail(f"{name} not found beside {sys.executable} nor on PATH; "
                    "install the project's dev requirements", pytrace=False)
    return found


def test_firmware_files_found():
    # The parametrized gates below would pass vacuously on an empty list.
    assert FILES, f"no firmware files found under {fw.ROOT} (boot.py, main.py, board/, drivers/, lib/)"
    assert ESP32_FILES, "only board/sim.py found: nothing to check for the ESP32"


@pytest.mark.parametrize("path", FILES, ids=fw.rel)
def test_compiles_for_esp32(path: Path, tmp_path: Path):
    out = tmp_path / (path.stem + ".mpy")
    proc = subprocess.run([venv_tool("mpy-cross"), "-march=xtensawin", "-o", str(out), str(path)],
                          capture_output=True, text=True, cwd=fw.ROOT)
    if proc.returncode != 0:
        pytest.fail(f"mpy-cross -march=xtensawin failed on {fw.rel(path)} (exit {proc.returncode}):\n"
                    f"{proc.stdout}{proc.stderr}", pytrace=False)
    assert out.is_file() and out.stat().st_size > 0


def test_pyright_esp32_stubs():
    fw.prepare_typings()
    proc = subprocess.run(
        [venv_tool("pyright"), "--outputjson", "--project", str(fw.PYRIGHT_CONFIG)],
        capture_output=True, text=True, cwd=fw.ROOT, timeout=600)
    try:
        report = json.loads(proc.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"pyright did not run (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}",
                    pytrace=False)
    errors = [d for d in report.get("generalDiagnostics", []) if d["severity"] == "error"]
    lines = []
    for d in errors:
        start = d.get("range", {}).get("start", {"line": 0, "character": 0})
        rule = f" ({d['rule']})" if d.get("rule") else ""
        where = Path(d["file"])
        where = fw.rel(where) if where.is_relative_to(fw.ROOT) else str(where)
        lines.append(f"{where}:{start['line'] + 1}:{start['character'] + 1} - {d['message']}{rule}")
    summary = report.get("summary", {})
    if errors or proc.returncode != 0:
        pytest.fail(f"pyright (ESP32 stubs) found {summary.get('errorCount', len(errors))} error(s), "
                    f"exit {proc.returncode}:\n" + "\n".join(lines)
                    + (f"\n{proc.stderr}" if proc.stderr else ""), pytrace=False)
    # Guard against a config that silently checks nothing (include/exclude drift).
    assert summary.get("filesAnalyzed", 0) >= len(ESP32_FILES), (
        f"pyright analysed {summary.get('filesAnalyzed')} files, expected {len(ESP32_FILES)}: "
        f"check include/exclude in {fw.PYRIGHT_CONFIG.name}")


def _imports(tree: ast.AST, path: Path):
    """(line, shown statement, absolute module, names or None) for each import in a file."""
    this = fw.module_name(path)
    package = this if fw.is_package(path) else this.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, f"import {alias.name}", alias.name, None
        elif isinstance(node, ast.ImportFrom):
            names = [a.name for a in node.names]
            shown = f"from {'.' * node.level}{node.module or ''} import {', '.join(names)}"
            module = node.module or ""
            if node.level:
                parts = package.split(".") if package else []
                if node.level - 1 > len(parts) or (not parts):
                    yield node.lineno, shown, None, names  # beyond the top-level package
                    continue
                parts = parts[: len(parts) - (node.level - 1)]
                module = ".".join(parts + ([node.module] if node.module else []))
            yield node.lineno, shown, module, names


@pytest.mark.parametrize("path", ESP32_FILES, ids=fw.rel)
def test_imports_exist_on_esp32(path: Path):
    table = fw.esp32_modules()
    project = fw.project_modules()
    problems = []
    found = sorted(_imports(ast.parse(path.read_text(), str(path)), path), key=lambda i: i[0])
    for line, shown, module, names in found:
        where = f"{fw.rel(path)}:{line}: {shown}"
        if module is None:
            problems.append(f"{where}: relative import outside a package")
        elif module.split(".")[0] in project:
            if module not in project:
                problems.append(f"{where}: no firmware module {module}")
        elif module not in table:
            problems.append(f"{where}: {module} is not a module of the ESP32 port")
        elif names:
            exported = fw.exported_names(module)
            missing = [n for n in names if n != "*" and exported is not None and n not in exported]
            if missing:
                problems.append(f"{where}: {', '.join(missing)} not in the ESP32 {module}")
    if problems:
        pytest.fail("imports missing on the ESP32:\n" + "\n".join(problems), pytrace=False)
