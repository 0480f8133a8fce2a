"""`ner-fast evaluate` (placeholder until its issue lands)."""
import click


@click.command()
def evaluate_command() -> None:
    """Not built yet."""
    raise click.ClickException("ner-fast evaluate is not built yet")
