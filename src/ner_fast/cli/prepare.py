"""`ner-fast prepare` (placeholder until its issue lands)."""
import click


@click.command()
def prepare_command() -> None:
    """Not built yet."""
    raise click.ClickException("ner-fast prepare is not built yet")
