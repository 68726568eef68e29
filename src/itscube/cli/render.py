"""Tables and summaries the commands print."""

from __future__ import annotations

from rich.table import Table

from itscube.cli.app import out_console

__all__ = ["download_summary", "products_table"]


def download_summary(res, seconds: float) -> None:
    if res.already_complete:
        out_console.print(f"[green]already complete[/]: {res.folder}")
        return
    table = Table(title="download complete", show_header=False)
    table.add_row("folder", str(res.folder))
    for store, n in zip(res.stores, res.layers, strict=True):
        table.add_row("store", f"{store.name} ({n} time steps)")
    table.add_row("source chunks", f"{res.chunks} needed")
    cached = f", {res.chunks_cached} served by the local chunk cache" if res.chunks_cached else ""
    table.add_row("requests", f"{res.chunks_fetched} sent{cached}")
    table.add_row("blocks", f"{res.blocks} of {res.blocks_total} assembled now")
    table.add_row("transferred", f"{res.bytes_fetched / 1e6:.2f} MB in {seconds:.1f} s")
    table.add_row("provenance", str(res.provenance))
    out_console.print(table)
    for note in res.notes:
        out_console.print(f"[yellow]note[/]: {note}")


def products_table(title: str, products) -> None:
    table = Table(title=title)
    table.add_column("folder", overflow="fold")
    table.add_column("files")
    table.add_column("highlights", overflow="fold")
    for p in products:
        per = p.summary.get("periods", [{}])[0]
        eff = per.get("effective", {})
        note = f"median effective {eff['median']:.3g} yr-1" if "median" in eff else ""
        table.add_row(str(p.folder), str(len(p.files)), note)
    out_console.print(table)
