"""`ulm store init|upgrade`: create or upgrade the store explicitly (`ulm run` does it too)."""

from __future__ import annotations

import typer

from ulm.cli import app
from ulm.cli.common import user_errors
from ulm.cli.run import ConfigOpt
from ulm.config import load_config
from ulm.store import Store
from ulm.store.opening import Found, StoreError, head, probe, target

store_app = typer.Typer(help="The store: create it, or upgrade it to this ULM's schema.",
                        no_args_is_help=True)
app.add_typer(store_app, name="store")


@store_app.command("init")
@user_errors
def init(config: ConfigOpt) -> None:
    """Create the store: only where there is nothing yet (a new file, an empty database)
    or a ULM store already."""
    url = load_config(config).store.url
    store = Store.open(url, mode="create")
    store.close()
    found = store.found
    where = target(url).shown
    if found is not None and found.found is Found.ULM:
        if found.revision == head():
            print(f"{where} is a ULM store already (revision {head()})")
        else:
            print(f"{where}: upgraded from revision {found.revision} to {head()}")
        return
    print(f"{where}: store created (revision {head()})")


@store_app.command("upgrade")
@user_errors
def upgrade(config: ConfigOpt) -> None:
    """Upgrade an existing ULM store to this ULM's schema (a no-op when it is current)."""
    url = load_config(config).store.url
    t = target(url)
    before = probe(t)
    if before.found in (Found.MISSING, Found.EMPTY):
        raise StoreError(f"no store at {t.shown}: `ulm store init` creates one", before.found)
    Store.open(url, mode="create").close()
    if before.revision == head():
        print(f"{t.shown} is at revision {head()} already: nothing to do")
    else:
        print(f"{t.shown}: upgraded from revision {before.revision} to {head()}")
