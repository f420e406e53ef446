"""Shared helpers for the portability gates (test_portability.py).

* Which files are firmware, and the module name each has on the device.
* The MicroPython ESP32 type stubs (micropython-esp32-stubs + micropython-stdlib-stubs,
  installed in the project venv) laid out for pyright, and the table of modules the ESP32
  port has, read from those same stubs.

How pyright gets the stubs: pyrightconfig.json names build/typings as the project's
virtual environment ("venvPath"/"venv") and its lib/site-packages as both "typeshedPath"
and "stubPath".  prepare_typings() copies every file of the two stub distributions
(found through importlib.metadata, so from whichever venv runs the tests) into that
site-packages.  So:
  * the micropython-stdlib-stubs "stdlib/" folder replaces CPython's typeshed stdlib
    (builtins, os, sys, asyncio, ... as MicroPython has them), which is what the
    micropython-stubs docs recommend (typeshedPath = a folder holding the stubs);
  * the port modules (machine, esp32, network, time, micropython, ...) resolve as
    installed stub packages from that same folder;
  * pyright never runs the host interpreter to find search paths, because a venv is
    configured and has a site-packages: CPython's own stdlib (threading.py, ...) and the
    host's site-packages are invisible, so `import threading` is an unresolved import.
The copy is stamped with the stub versions and this file's hash and rebuilt only when
they change.  build/ is generated output.

Two corrections are applied to the copy (correct_stubs()):
  * narrowing: micropython-stdlib-stubs' os stub is typeshed's CPython os with MicroPython's
    docs merged in, so it still declares getenv, putenv, system, environ, fork, ...  The
    ESP32 build of os has none of those (extmod/modos.c compiles them in only with
    MICROPY_PY_OS_GETENV_PUTENV_UNSETENV / MICROPY_PY_OS_SYSTEM, which only the unix port
    turns on).  ESP32_NARROW lists what the ESP32 os really has; the copied stub keeps only
    those public names (plus any class they need in a signature).
  * completing: the stub's io.StringIO / io.BytesIO declare only __init__ and no stream
    base, so buf.write(), buf.getvalue() and sys.print_exception(e, buf) -- all real on the
    ESP32 ("all the usual file methods ... and getvalue()", MicroPython io docs) -- would be
    errors.  STREAM_CLASSES gives them the file methods and io.IOBase as base.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import shutil
import sys
from functools import lru_cache
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
from tools import fonts, image  # noqa: E402  (what goes on the device is the image builder's to say)

PYRIGHT_CONFIG = ROOT / "pyrightconfig.json"

LIB_DIR = "lib"  # on sys.path as /lib: lib/diag.py is `import diag`
SIM = ROOT / image.SIM_ONLY[0]  # the one firmware file that may use unix-port-only APIs

STUB_DISTS = ("micropython-esp32-stubs", "micropython-stdlib-stubs")

# Public names the ESP32 port's modules really have, where the stubs declare more.
ESP32_NARROW: dict[str, frozenset[str]] = {
    # extmod/modos.c as configured by ports/esp32 (VFS, FAT, littlefs v2, dupterm, uname,
    # urandom, sync); no getenv/putenv/unsetenv/system (unix port only).
    "os": frozenset({
        "uname", "urandom", "sync", "sep", "chdir", "getcwd", "listdir", "ilistdir",
        "mkdir", "remove", "unlink", "rename", "rmdir", "stat", "statvfs",
        "dupterm", "dupterm_notify", "mount", "umount", "VfsFat", "VfsLfs2",
    }),
}


# In-memory streams of the io module: class -> the type read() returns.
STREAM_CLASSES = {"StringIO": "str", "BytesIO": "bytes"}
_STREAM_METHODS = """
def read(self, size: int = -1, /) -> {T}: ...
def readinto(self, buf: bytearray | memoryview, nbytes: int = -1, /) -> int: ...
def readline(self, size: int = -1, /) -> {T}: ...
def write(self, buf: {W}, /) -> int: ...
def seek(self, offset: int, whence: int = 0, /) -> int: ...
def tell(self) -> int: ...
def flush(self) -> None: ...
def close(self) -> None: ...
def getvalue(self) -> {T}: ...
def __enter__(self) -> {C}: ...
def __exit__(self, *args: object) -> None: ...
"""


# ---------------------------------------------------------------- firmware files

def firmware_files() -> list[Path]:
    """Every firmware source file, board/sim.py included, sorted."""
    return sorted(src for src, _ in image.firmware_sources(board="sim") if src.is_file())


def rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def module_name(path: Path) -> str:
    """The dotted name a firmware file is imported by on the device."""
    if path.parent == fonts.OUT_DIR:
        return path.stem  # made at build time (the fonts), a module of /lib
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[0] == LIB_DIR:
        parts = parts[1:]
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def is_package(path: Path) -> bool:
    return path.name == "__init__.py"


@lru_cache(maxsize=None)
def project_modules() -> frozenset[str]:
    """Module names of the firmware files and every package above them."""
    names: set[str] = set()
    for path in firmware_files():
        parts = module_name(path).split(".")
        names.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
    return frozenset(names)


# ---------------------------------------------------------------- stubs for pyright

def pyright_settings() -> dict:
    return json.loads(PYRIGHT_CONFIG.read_text())


def typings_dir() -> Path:
    """The site-packages folder pyright takes the stubs from (see module docstring)."""
    cfg = pyright_settings()
    site = ROOT / cfg["typeshedPath"]
    venv_site = ROOT / cfg["venvPath"] / cfg["venv"] / "lib" / "site-packages"
    assert site == venv_site, (
        f"{PYRIGHT_CONFIG.name}: typeshedPath must be <venvPath>/<venv>/lib/site-packages "
        f"so pyright sees only the MicroPython stubs ({site} != {venv_site})")
    return site


def _dist_files(dist_name: str) -> list[tuple[str, Path]]:
    """(path relative to site-packages, installed file) for each stub file of a distribution."""
    try:
        dist = metadata.distribution(dist_name)
    except metadata.PackageNotFoundError:
        raise RuntimeError(f"{dist_name} is not installed in {sys.prefix}; "
                           "the portability gates need it (see requirements)") from None
    out = []
    for f in dist.files or ():
        rel_path = f.as_posix()
        if ".dist-info/" in rel_path or "__pycache__" in rel_path or rel_path.startswith(".."):
            continue
        out.append((rel_path, Path(str(dist.locate_file(f)))))
    return out


def _stamp() -> str:
    versions = {name: metadata.version(name) for name in STUB_DISTS}
    me = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()
    return json.dumps({"stubs": versions, "helper": me}, sort_keys=True)


def prepare_typings() -> Path:
    """Lay the stubs out in build/typings (if not already there) and return its site-packages."""
    site = typings_dir()
    venv_dir = site.parent.parent
    stamp_file = venv_dir / "STAMP"
    stamp = _stamp()
    if stamp_file.is_file() and stamp_file.read_text() == stamp:
        return site
    tmp = venv_dir.with_name(f"{venv_dir.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp_site = tmp / site.relative_to(venv_dir)
    for dist_name in STUB_DISTS:
        for rel_path, src in _dist_files(dist_name):
            dst = tmp_site / rel_path
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dst)
    correct_stubs(tmp_site)
    (tmp / "STAMP").write_text(stamp)
    shutil.rmtree(venv_dir, ignore_errors=True)
    try:
        tmp.rename(venv_dir)
    except OSError:  # another test process laid it out meanwhile
        shutil.rmtree(tmp, ignore_errors=True)
        if not (stamp_file.is_file() and stamp_file.read_text() == stamp):
            raise
    return site


def _module_file(site: Path, module: str) -> Path | None:
    """A stub module's file inside the typings site-packages (stdlib/ first, like pyright)."""
    rel_path = Path(*module.split("."))
    for base in (site / "stdlib", site):
        for cand in (base / rel_path / "__init__.pyi", base.joinpath(*rel_path.parts[:-1],
                                                                     rel_path.name + ".pyi")):
            if cand.is_file():
                return cand
    return None


def correct_stubs(site: Path) -> None:
    """Apply the corrections described in the module docstring to the stubs in `site`."""
    for module, keep in ESP32_NARROW.items():
        stub = _module_file(site, module)
        assert stub is not None, f"no stub for {module} in {STUB_DISTS}"
        stub.write_text(narrow_stub(stub.read_text(), keep, module))
    stub = _module_file(site, "io")
    assert stub is not None, f"no stub for io in {STUB_DISTS}"
    tree = ast.parse(stub.read_text())
    classes = {n.name: n for n in tree.body if isinstance(n, ast.ClassDef)}
    assert "IOBase" in classes, "io stub: no IOBase to derive the in-memory streams from"
    for name, returns in STREAM_CLASSES.items():
        cls = classes[name]
        have = {n.name for n in cls.body if isinstance(n, ast.FunctionDef)}
        if not cls.bases:
            cls.bases = [ast.Name("IOBase", ast.Load())]
        written = "str" if returns == "str" else "bytes | bytearray | memoryview"
        methods = ast.parse(_STREAM_METHODS.format(T=returns, W=written, C=name)).body
        cls.body += [m for m in methods if isinstance(m, ast.FunctionDef) and m.name not in have]
    stub.write_text(f"# io: StringIO/BytesIO completed by tests/host/firmware_files.py\n"
                    f"{ast.unparse(tree)}\n")


def _defined(stmt: ast.stmt) -> list[str]:
    if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return [stmt.name]
    if isinstance(stmt, ast.Assign):
        return [n.id for t in stmt.targets for n in ast.walk(t) if isinstance(n, ast.Name)]
    if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
        return [stmt.target.id]
    return []


def _blocks(stmt: ast.stmt) -> list[list[ast.stmt]]:
    if isinstance(stmt, ast.If):
        return [stmt.body, stmt.orelse]
    if isinstance(stmt, ast.Try):
        return [stmt.body, *(h.body for h in stmt.handlers), stmt.orelse, stmt.finalbody]
    return []


def narrow_stub(source: str, keep: frozenset[str], module: str) -> str:
    """Drop the public definitions of a stub module that are not in `keep`.

    Imports, private names and anything a kept definition refers to stay, so the stub
    remains self-consistent.  Definitions nested in `if sys.platform ...` blocks count.
    """
    tree = ast.parse(source)
    wanted = set(keep)

    def droppable(stmt: ast.stmt) -> bool:
        names = _defined(stmt)
        return bool(names) and all(not n.startswith("_") and n not in wanted for n in names)

    def kept_statements(body: list[ast.stmt]):
        for stmt in body:
            blocks = _blocks(stmt)
            if blocks:
                yield from (s for b in blocks for s in kept_statements(b))
            elif not droppable(stmt):
                yield stmt

    while True:  # keep whatever kept definitions refer to, until nothing new turns up
        used = {n.id for s in kept_statements(tree.body) for n in ast.walk(s)
                if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
        if used <= wanted:
            break
        wanted |= used

    def prune(body: list[ast.stmt]) -> list[ast.stmt]:
        out = []
        for stmt in body:
            blocks = _blocks(stmt)
            if blocks:
                if isinstance(stmt, ast.If):
                    stmt.body = prune(stmt.body) or [ast.Pass()]
                    stmt.orelse = prune(stmt.orelse)
                else:
                    stmt.body = prune(stmt.body) or [ast.Pass()]
                out.append(stmt)
            elif not droppable(stmt):
                out.append(stmt)
        return out

    tree.body = prune(tree.body)
    header = (f"# {module}: narrowed by tests/host/firmware_files.py to what the ESP32 port has;\n"
              f"# kept public names: {', '.join(sorted(keep))}\n")
    return header + ast.unparse(tree) + "\n"


# ---------------------------------------------------------------- ESP32 module table

def _stub_module_name(rel_path: str) -> str | None:
    parts = rel_path.split("/")
    if not parts[-1].endswith(".pyi"):
        return None
    parts[-1] = parts[-1][:-4]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts) if parts else None


@lru_cache(maxsize=None)
def esp32_modules() -> dict[str, Path]:
    """Module name -> stub file (in the prepared typings) for every module the ESP32 port has.

    Taken from the installed stubs:
      * every module and package micropython-esp32-stubs ships (its __builtins__.pyi is a
        pyright hook, not a module);
      * each stdlib module X of micropython-stdlib-stubs (with its submodules) for which
        the ESP32 stubs ship the MicroPython alias uX (uos -> os, ucollections ->
        collections, uasyncio -> asyncio, ...).  The rest of that stdlib folder (typing,
        abc, enum, types, __future__, _typeshed, ...) is typeshed plumbing that the ESP32
        firmware does not have.
    """
    site = prepare_typings()
    table: dict[str, Path] = {}
    for rel_path, _src in _dist_files("micropython-esp32-stubs"):
        name = _stub_module_name(rel_path)
        if name and name != "__builtins__":
            table[name] = site / rel_path
    stdlib: dict[str, Path] = {}
    for rel_path, _src in _dist_files("micropython-stdlib-stubs"):
        if rel_path.startswith("stdlib/"):
            name = _stub_module_name(rel_path[len("stdlib/"):])
            if name:
                stdlib[name] = site / rel_path
    vouched = {name[1:] for name in table if name.startswith("u") and "." not in name}
    for name, path in stdlib.items():
        if name.split(".")[0] in vouched:
            table[name] = path
    return table


@lru_cache(maxsize=None)
def exported_names(module: str) -> frozenset[str] | None:
    """Public names an ESP32 module's stub defines (None: any name, via __getattr__).

    Follows the stub re-export rules: defs, classes and assignments count; an import counts
    only as `import a as a` / `from m import a as a` / `from m import *`.  Submodules count.
    """
    table = esp32_modules()
    names: set[str] = {sub[len(module) + 1:] for sub in table
                       if sub.startswith(module + ".") and "." not in sub[len(module) + 1:]}
    package = module if table[module].name == "__init__.pyi" else module.rpartition(".")[0]

    def visit(body: list[ast.stmt]) -> bool:
        for stmt in body:
            for block in _blocks(stmt):
                if not visit(block):
                    return False
            names.update(_defined(stmt))
            if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)) and stmt.name == "__getattr__":
                return False
            if isinstance(stmt, ast.Import):
                names.update(a.asname for a in stmt.names if a.asname and a.asname == a.name)
            elif isinstance(stmt, ast.ImportFrom):
                source = stmt.module or ""
                if stmt.level:
                    base = package.split(".")[: len(package.split(".")) - (stmt.level - 1)]
                    source = ".".join(base + ([stmt.module] if stmt.module else []))
                for alias in stmt.names:
                    if alias.name == "*":
                        if source in table and source != module:
                            star = exported_names(source)
                            if star is None:
                                return False
                            names.update(n for n in star if not n.startswith("_"))
                    elif alias.asname == alias.name:
                        names.add(alias.asname or alias.name)
        return True

    if not visit(ast.parse(table[module].read_text()).body):
        return None
    return frozenset(n for n in names if not n.startswith("_") or n.startswith("__"))


if __name__ == "__main__":  # lay out build/typings for an editor's pyright without running the tests
    print(prepare_typings())
