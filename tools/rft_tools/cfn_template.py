"""Read SAM/CloudFormation YAML templates for local tooling.

CloudFormation's short-form tags (``!Ref``, ``!Sub``, ``!GetAtt`` ...) are not
standard YAML, so a plain ``yaml.safe_load`` rejects them. ``CfnLoader`` turns
every ``!Tag`` into the equivalent long-form dict, so the rest of the tooling
only ever sees ``{"Ref": ...}`` / ``{"Fn::Sub": ...}`` shapes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

# Short-form tags whose long form is not simply "Fn::<Tag>".
_LONG_FORM_NAMES = {"Ref": "Ref", "Condition": "Condition"}


class CfnLoader(yaml.SafeLoader):
    """SafeLoader that understands CloudFormation short-form intrinsic functions."""


def _construct_intrinsic(loader: CfnLoader, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = _LONG_FORM_NAMES.get(tag_suffix, f"Fn::{tag_suffix}")
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        if tag_suffix == "GetAtt" and isinstance(value, str):
            # "!GetAtt Db.Endpoint.Address" -> ["Db", "Endpoint.Address"]
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {name: value}


CfnLoader.add_multi_constructor("!", _construct_intrinsic)
# CloudFormation keeps unquoted dates (e.g. IAM "Version: 2012-10-17") as strings.
CfnLoader.add_constructor("tag:yaml.org,2002:timestamp", CfnLoader.construct_yaml_str)


def parse_template(text: str) -> dict[str, Any]:
    """Parse template YAML text; the document must be a mapping."""
    document = yaml.load(text, Loader=CfnLoader)  # noqa: S506 - CfnLoader is a SafeLoader
    if not isinstance(document, dict):
        raise ValueError("template must be a YAML mapping")
    return document


def load_template(path: Path) -> dict[str, Any]:
    """Load a SAM/CloudFormation template file."""
    return parse_template(path.read_text(encoding="utf-8"))


def function_properties(template: dict[str, Any], logical_id: str) -> dict[str, Any]:
    """A function's Properties with ``Globals.Function`` defaults applied (shallow merge).

    Environment variables need a deep merge: use ``function_environment`` for those.
    """
    properties = _resource(template, logical_id).get("Properties") or {}
    return {**_globals_function(template), **properties}


def function_environment(
    template: dict[str, Any], logical_id: str, overrides: dict[str, str]
) -> dict[str, str]:
    """Environment a function would get: Globals + its own variables, then ``overrides``.

    Only literal values (strings, numbers, booleans) are kept: intrinsic functions
    such as ``!Ref DbSecret`` cannot be resolved locally, so those keys must come
    from ``overrides`` or are left unset.
    """
    properties = _resource(template, logical_id).get("Properties") or {}
    environment: dict[str, str] = {}
    for section in (_globals_function(template), properties):
        for key, value in _variables(section).items():
            literal = _literal(value)
            if literal is not None:
                environment[str(key)] = literal
    environment.update(overrides)
    return environment


def literal_int(value: Any, default: int) -> int:
    """A literal integer property, or ``default`` when absent or an intrinsic function."""
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _resource(template: dict[str, Any], logical_id: str) -> dict[str, Any]:
    resource = (template.get("Resources") or {}).get(logical_id)
    if not isinstance(resource, dict):
        raise KeyError(f"no resource {logical_id!r} in template")
    return resource


def _globals_function(template: dict[str, Any]) -> dict[str, Any]:
    return (template.get("Globals") or {}).get("Function") or {}


def _variables(section: dict[str, Any]) -> dict[str, Any]:
    variables = (section.get("Environment") or {}).get("Variables")
    return variables if isinstance(variables, dict) else {}


def _literal(value: Any) -> str | None:
    """CloudFormation's string form of a literal, or None for intrinsics/null."""
    if isinstance(value, bool):  # before int: bool is an int subclass
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    return None
