"""The cold-start bench's import profile: the tree ``-X importtime`` prints, and each
library's share of it, standard-library modules counted for the library that loads them."""

from __future__ import annotations

import os
import sys

import pytest

from bench.cold_start import (
    HANDLER_IMPORT_STARTS,
    import_time_by_library,
    import_tree,
    parse_importtime,
    slowest_imports,
)

IMPORTTIME = f"""\
import time: self [us] | cumulative | imported package
import time:       500 |        500 | site
{HANDLER_IMPORT_STARTS}
import time:      3000 |       3000 |       asyncio
import time:      1000 |       4000 |     sqlalchemy.util
import time:     20000 |      24000 |   sqlalchemy
import time:      2000 |      26000 | rft_common.db.engine
import time:      1500 |       1500 |   pydantic_core
import time:      4000 |       5500 | pydantic
import time:       700 |        700 | decimal
"""


def test_the_tree_nests_each_module_under_its_importer_and_leaves_out_start_up():
    tree = parse_importtime(IMPORTTIME)

    assert [module["module"] for module in tree] == ["rft_common.db.engine", "pydantic", "decimal"]
    [sqlalchemy] = tree[0]["imports"]
    assert sqlalchemy["module"] == "sqlalchemy"
    assert sqlalchemy["imports"][0]["imports"][0]["module"] == "asyncio"
    assert (sqlalchemy["self_ms"], sqlalchemy["cumulative_ms"]) == (20.0, 24.0)


def test_each_library_is_charged_its_own_modules_and_the_standard_ones_it_loads():
    by_library = import_time_by_library(parse_importtime(IMPORTTIME))

    assert by_library == {
        "sqlalchemy": 24.0,  # with asyncio, which it imported
        "pydantic": 5.5,  # with pydantic_core, a part of it
        "rft_common": 2.0,
        "stdlib": 0.7,  # what the handler imported itself
    }
    assert list(by_library) == sorted(by_library, key=lambda name: -by_library[name])


def test_the_slowest_imports_are_ranked_by_cumulative_time():
    ranked = slowest_imports(parse_importtime(IMPORTTIME))

    assert [row["module"] for row in ranked[:3]] == [
        "rft_common.db.engine",
        "sqlalchemy",
        "pydantic",
    ]
    assert ranked[0] == {"module": "rft_common.db.engine", "cumulative_ms": 26.0, "self_ms": 2.0}


@pytest.fixture
def handler_with_a_library(tmp_path):
    library = tmp_path / "library_under_test"
    library.mkdir()
    (library / "__init__.py").write_text("import fractions\n")
    handler = tmp_path / "app.py"
    handler.write_text("import library_under_test\nimport json\n")
    return handler


def test_a_real_profile_charges_the_library_what_it_loads(handler_with_a_library):
    environment = os.environ | {"PYTHONPATH": str(handler_with_a_library.parent)}

    tree = import_tree(sys.executable, handler_with_a_library, environment)
    by_library = import_time_by_library(tree)

    assert [module["module"] for module in tree] == ["library_under_test"]  # json: before
    loaded = {module["module"] for module in tree[0]["imports"]}
    assert "fractions" in loaded
    assert set(by_library) == {"library_under_test"}
