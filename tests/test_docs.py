"""Tests that keep the docs honest: every policy key is documented, every example runs."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel

from ulm.policy import Policy

ROOT = Path(__file__).resolve().parents[1]


def keys(model: type[BaseModel], prefix: str = "") -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for name, field in model.model_fields.items():
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            out.extend(keys(ann, name))
        else:
            out.append((prefix, name))
    return out


def test_every_policy_key_is_documented_in_its_section() -> None:
    doc = (ROOT / "docs" / "policy.md").read_text()
    sections = re.split(r"^## ", doc, flags=re.M)
    for section, key in keys(Policy):
        heading = f"`[{section}]`" if section else "Top level"
        body = next((s for s in sections if s.startswith(heading)), None)
        assert body is not None, f"docs/policy.md has no section {heading}"
        assert f"| `{key}` |" in body, f"docs/policy.md does not document {section}.{key}"


def test_every_builtin_policy_is_documented() -> None:
    from ulm.policy import builtin_names
    doc = (ROOT / "docs" / "policy.md").read_text()
    table = doc[doc.index("## Built-in policies"):]
    for name in builtin_names():
        short = name.split("-")[0]
        assert f"`{name}`" in table or f"`{short}-" in table or f"`{short}`" in table, name


def test_toml_examples_in_the_policy_doc_are_valid() -> None:
    from ulm.policy import parse_policy
    doc = (ROOT / "docs" / "policy.md").read_text()
    blocks = re.findall(r"```toml\n(.*?)```", doc, flags=re.S)
    assert blocks
    for block in blocks:
        if block.startswith("# ulm.toml"):  # a daemon setting documented beside the rules
            import tomllib

            from ulm.config import CollectConfig
            CollectConfig.model_validate(tomllib.loads(block)["collect"])
            continue
        parse_policy(block, "docs/policy.md")
