"""`ner-fast tag` (placeholder until its issue lands)."""
import click


@click.command()
def tag_command() -> None:
    """Not built yet."""
    raise click.ClickException("ner-fast tag is not built yet")
