"""`ulm policy check FILE`: validate a policy and print it with every default filled in."""

from __future__ import annotations

from typing import Annotated

import tomli_w
import typer

from ulm.cli import app
from ulm.cli.common import Format, user_errors
from ulm.jsonout import dumps
from ulm.policy import builtin_names, resolve_policy

policy_app = typer.Typer(help="Check and show scheduling policies.", no_args_is_help=True)
app.add_typer(policy_app, name="policy")


@policy_app.command("check")
@user_errors
def check(
    policy: Annotated[str, typer.Argument(help="Policy file, or the name of a built-in policy.")],
    fmt: Annotated[Format, typer.Option("--format", help="Output format.")] = Format.table,
) -> None:
    """Validate a policy file and print the effective policy (defaults filled in)."""
    pol = resolve_policy(policy)
    data = pol.model_dump(mode="json", exclude_none=True)
    if fmt is Format.json:
        print(dumps({"digest": pol.digest, "policy": data}, indent=2))
        return
    print(f"# {policy}: valid (digest {pol.digest})")
    print(tomli_w.dumps(data), end="")


@policy_app.command("list")
def list_builtin() -> None:
    """List the built-in policies."""
    for name in builtin_names():
        pol = resolve_policy(name)
        print(f"{name:14} {pol.description}")


