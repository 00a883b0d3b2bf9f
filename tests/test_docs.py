"""docs/plugins.md documents every hook with its real signature and a worked example that compiles."""

from __future__ import annotations

import inspect
import re

from conftest import REPO

from release_pipeline.plugins import hookspecs

DOC = (REPO / "docs" / "plugins.md").read_text()
HOOKS = {name: fn for name, fn in inspect.getmembers(hookspecs, inspect.isfunction) if name.startswith("release_")}


def sections() -> dict[str, str]:
    """Each `### `hook(args)`` heading with the text up to the next heading."""
    found = {}
    for match in re.finditer(r"^### `(\w+)\(([^)]*)\)`\n(.*?)(?=^##|\Z)", DOC, flags=re.M | re.S):
        found[match.group(1)] = (match.group(2), match.group(3))
    return found


def test_every_hook_is_documented_with_its_real_signature():
    documented = sections()
    assert set(documented) == set(HOOKS), "hooks missing from or unknown to docs/plugins.md"
    for name, (args, _) in documented.items():
        real = ", ".join(inspect.signature(HOOKS[name]).parameters)
        assert args == real, f"{name}: docs say ({args}), the hook takes ({real})"


def test_every_hook_has_a_worked_example_that_compiles():
    for name, (_, body) in sections().items():
        blocks = re.findall(r"```python\n(.*?)```", body, flags=re.S)
        assert blocks, f"{name} has no example"
        for block in blocks:
            compile(block, f"docs/plugins.md:{name}", "exec")
            assert f"def {name}(" in block, f"{name}: the example does not implement it"


def test_the_examples_import_only_from_the_package_top():
    imports = set(re.findall(r"^from (release_pipeline[\w.]*) import", DOC, flags=re.M))
    assert imports == {"release_pipeline"}


def test_the_json_shapes_page_is_generated_from_the_records():
    from release_pipeline.reports.json_shapes import render

    page = (REPO / "docs" / "json.md").read_text()
    assert page == render(), "a record changed: run `python -m release_pipeline.reports.json_shapes > docs/json.md`"
