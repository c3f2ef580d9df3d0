"""The engine's wiring rules, checked on the source: use cases import no adapter and no I/O
library, hold no Redis client and write no SQL (stores and repositories in storage/ do); the
engine imports no front end at module level; no use case is handed the engine."""

from __future__ import annotations

import ast
import importlib
import inspect
import re
from pathlib import Path

import pytest

import arrakis_engine

ENGINE = Path(arrakis_engine.__file__).parent

LIBRARIES = {"httpx", "web3", "minio", "rq", "redis", "requests", "hvac", "slack_sdk", "textual", "interactions"}
ADAPTERS = {
    "arrakis_engine.adapters",  # every module under adapters/ (Discord REST, chain, RQ, S3, signing, ...)
    "arrakis_engine.synthesis.freeze", "arrakis_engine.synthesis.jobs",
    "arrakis_engine.synthesis.rq_queue",  # the old name of the RQ failure callback, for jobs already queued
    "arrakis_engine.storage.redis_state", "arrakis_engine.storage.wizard_sessions", "arrakis_engine.embedded",
    "arrakis_engine.bootstrap",
}
# Every module of the engine is a use case (or the domain it works on) unless it is one of these:
# adapters (they speak to an outside system), storage (the one place for SQL and Redis keys), the
# command line and the Discord sandbox, and the plumbing every layer shares.
NOT_USE_CASES = {
    # adapters outside adapters/
    *(a.removeprefix("arrakis_engine.") for a in ADAPTERS if a != "arrakis_engine.adapters"),
    "chain.breaker",  # pybreaker around the RPC endpoints
    # plumbing
    "__init__", "errors", "keys", "ports", "settings", "logs", "processes", "metrics",
}
NOT_USE_CASE_PACKAGES = ("adapters.", "storage.", "cli.", "sandbox.")


def _discover() -> list[str]:
    """Every use-case module, found in the tree (a new one is checked without being listed)."""
    out = []
    for path in sorted(ENGINE.rglob("*.py")):
        module = ".".join(path.relative_to(ENGINE).with_suffix("").parts)
        if module.endswith("__init__") or module in NOT_USE_CASES or module.startswith(NOT_USE_CASE_PACKAGES):
            continue
        out.append(module)
    return out


USE_CASES = _discover()
# Text that is SQL, but not for our database: named here, with why.
SQL_ELSEWHERE = {"migration.sqlite_import": "reads the legacy bot's SQLite file (the input), not PostgreSQL"}
SQL = re.compile(r"\b(SELECT\s.+?\sFROM|INSERT\s+INTO|DELETE\s+FROM|UPDATE\s+\w+\s+SET|pg_advisory\w*)\b",
                 re.IGNORECASE | re.DOTALL)


def imports_of(module: str, *, top_level_only: bool = False) -> set[str]:
    """Every module ``module`` imports (relative imports resolved), at any depth unless told."""
    path = ENGINE.joinpath(*module.split(".")).with_suffix(".py")
    tree = ast.parse(path.read_text())
    package = ("arrakis_engine." + module).rsplit(".", 1)[0]
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    out = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                name = f"{base}.{node.module}" if node.module else base
                out.add(name)
                out |= {f"{name}.{a.name}" for a in node.names}
            else:
                out.add(node.module)
                out |= {f"{node.module}.{a.name}" for a in node.names}
    return out


@pytest.mark.parametrize("module", USE_CASES)
def test_use_cases_import_no_adapter_and_no_io_library(module):
    found = imports_of(module)
    libraries = {m for m in found if m.split(".")[0] in LIBRARIES}
    adapters = {m for m in found if any(m == a or m.startswith(a + ".") for a in ADAPTERS)}
    assert not libraries and not adapters, f"{module} imports {sorted(libraries | adapters)}"


def test_the_engine_never_imports_a_front_end_at_module_level():
    for path in ENGINE.rglob("*.py"):
        module = ".".join(path.relative_to(ENGINE).with_suffix("").parts)
        found = imports_of(module, top_level_only=True)
        assert not {m for m in found if m.split(".")[0] in {"textual", "interactions", "arrakis_tui", "arrakis_bot", "arrakis_web"}}, \
            module


@pytest.mark.parametrize("module", USE_CASES)
def test_no_use_case_is_handed_the_whole_engine(module):
    mod = importlib.import_module(f"arrakis_engine.{module}")
    for _, cls in inspect.getmembers(mod, inspect.isclass):
        if cls.__module__ != mod.__name__:
            continue
        param = inspect.signature(cls.__init__).parameters.get("engine")
        # (a port that happens to be called an engine, such as the PolicyEngine, is fine)
        assert param is None or param.annotation not in (inspect.Parameter.empty, "Engine"), \
            f"{cls.__name__} takes the engine"


def test_no_use_case_reads_the_wall_clock():
    for module in USE_CASES:
        source = ENGINE.joinpath(*module.split(".")).with_suffix(".py").read_text()
        assert "time.time()" not in source and "datetime.now(" not in source, module


def _source_tree(module: str) -> ast.AST:
    return ast.parse(ENGINE.joinpath(*module.split(".")).with_suffix(".py").read_text())


def test_the_use_cases_are_found_in_the_tree():
    # the packages the hand-kept list used to skip are checked too
    for module in ("use_cases.member_desk", "use_cases.live", "use_cases.verification", "use_cases.platform_ops",
                   "domain.validation", "policy.approvals", "security.mfa", "security.operators",
                   "security.killswitch", "security.drill", "signing.signing_service"):
        assert module in USE_CASES
    assert not {m for m in USE_CASES if m.startswith(NOT_USE_CASE_PACKAGES)}


@pytest.mark.parametrize("module", USE_CASES)
def test_use_cases_hold_no_redis_client(module):
    """Redis is reached through a store (storage/redis_state.py), never a client in a use case."""
    found = sorted({n.lineno for n in ast.walk(_source_tree(module))
                    if (isinstance(n, ast.Attribute) and n.attr == "redis")
                    or (isinstance(n, ast.arg) and n.arg == "redis")
                    or (isinstance(n, ast.Name) and n.id == "redis")})
    assert not found, f"{module} uses a Redis client on line(s) {found}: give it a store in storage/"


@pytest.mark.parametrize("module", [m for m in USE_CASES if m not in SQL_ELSEWHERE])
def test_use_cases_write_no_sql(module):
    """SQL lives in the repositories of storage/; a use case calls them."""
    found = []
    for node in ast.walk(_source_tree(module)):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            text = node.value
        elif isinstance(node, ast.JoinedStr):
            text = " ".join(v.value for v in node.values if isinstance(v, ast.Constant) and isinstance(v.value, str))
        else:
            continue
        if SQL.search(text):
            found.append(node.lineno)
    assert not found, f"{module} has SQL on line(s) {sorted(set(found))}: move it to a repository in storage/"


def test_the_checks_catch_what_they_look_for():
    """The two source checks above, on a use case written the old way, do fail."""
    tree = ast.parse('class X:\n    def __init__(self, redis):\n        self.redis = redis\n'
                     '    def f(self, tx):\n        return tx.one(f"SELECT {C} FROM t WHERE a = %s", (1,))\n')
    assert any(isinstance(n, ast.arg) and n.arg == "redis" for n in ast.walk(tree))
    texts = [" ".join(v.value for v in n.values if isinstance(v, ast.Constant)) for n in ast.walk(tree)
             if isinstance(n, ast.JoinedStr)]
    assert any(SQL.search(t) for t in texts)


def _engine_modules(prefix: str) -> list[str]:
    return sorted(".".join(p.relative_to(ENGINE).with_suffix("").parts) for p in ENGINE.joinpath(prefix).rglob("*.py"))


# What each lower layer may import from the engine (itself included): nothing above it.
BELOW = {
    "domain": ("errors", "domain"),
    "storage": ("errors", "keys", "ports", "metrics", "settings", "processes", "logs", "domain", "storage"),
}


@pytest.mark.parametrize("layer", sorted(BELOW))
def test_domain_and_storage_import_nothing_above_them(layer):
    """The domain reads only the errors; storage reads the domain and the shared plumbing, never a
    use case's package (chain/, synthesis/, ...)."""
    allowed = tuple(f"arrakis_engine.{name}" for name in BELOW[layer])
    for module in _engine_modules(layer):
        found = {m for m in imports_of(module) if m.startswith("arrakis_engine.")}
        upward = {m for m in found if not any(m == a or m.startswith(a + ".") for a in allowed)}
        assert not upward, f"{module} imports {sorted(upward)}"


def test_storage_modules_import_each_other_without_a_loop():
    """storage/outbox.py and storage/repositories.py used to import each other (one of them inside a
    function to get round it); no module of storage/ reaches itself through its imports."""
    modules = {m for m in _engine_modules("storage") if not m.endswith("__init__")}
    graph = {m: {i.removeprefix("arrakis_engine.") for i in imports_of(m)} & modules for m in modules}

    def reaches(start, target, seen):
        for nxt in graph.get(start, ()):
            if nxt == target or (nxt not in seen and not seen.add(nxt) and reaches(nxt, target, seen)):
                return True
        return False

    loops = sorted(m for m in modules if reaches(m, m, set()))
    assert not loops, f"import loops through {loops}"
