"""The engine's wiring rules, checked on the source: use cases import no adapter and no I/O
library; the engine imports no front end at module level; no use case is handed the engine."""

from __future__ import annotations

import ast
import importlib
import inspect
from pathlib import Path

import pytest

import arrakis_engine

ENGINE = Path(arrakis_engine.__file__).parent

USE_CASES = [
    "communities", "eligibility", "wallets", "water_sharer", "operations", "demo", "platform_ops",
    "chain.orchestrator", "manifests.service", "manifests.archive", "manifests.builder",
    "synthesis.community", "synthesis.members", "synthesis.reconcile", "synthesis.service",
    "synthesis.scheduler", "synthesis.drift", "synthesis.planning", "wizard.service", "wizard.model",
    "migration.sqlite_import", "themes.evaluator", "themes.model", "members", "verification", "live",
    "chain.watcher", "security.anchor", "chain.ranking",
]
LIBRARIES = {"httpx", "web3", "minio", "rq", "redis", "requests", "hvac", "slack_sdk", "textual", "interactions"}
ADAPTERS = {
    "arrakis_engine.synthesis.discord_http", "arrakis_engine.synthesis.redis_bucket",
    "arrakis_engine.synthesis.rq_queue", "arrakis_engine.synthesis.freeze", "arrakis_engine.synthesis.jobs",
    "arrakis_engine.chain.web3_reader", "arrakis_engine.chain.score_http", "arrakis_engine.storage.s3_shadow",
    "arrakis_engine.storage.redis_state", "arrakis_engine.wizard.sessions", "arrakis_engine.embedded",
    "arrakis_engine.bootstrap",
}


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
        assert not {m for m in found if m.split(".")[0] in {"textual", "interactions", "arrakis_tui", "arrakis_bot"}}, \
            module


@pytest.mark.parametrize("module", USE_CASES)
def test_no_use_case_is_handed_the_whole_engine(module):
    mod = importlib.import_module(f"arrakis_engine.{module}")
    for _, cls in inspect.getmembers(mod, inspect.isclass):
        if cls.__module__ != mod.__name__:
            continue
        params = inspect.signature(cls.__init__).parameters
        assert "engine" not in params, f"{cls.__name__} takes the engine"


def test_no_use_case_reads_the_wall_clock():
    for module in USE_CASES:
        source = ENGINE.joinpath(*module.split(".")).with_suffix(".py").read_text()
        assert "time.time()" not in source and "datetime.now(" not in source, module
