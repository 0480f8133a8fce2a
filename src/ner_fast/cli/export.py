"""`ner-fast export` (placeholder until its issue lands)."""
import click


@click.command()
def export_command() -> None:
    """Not built yet."""
    raise click.ClickException("ner-fast export is not built yet")
