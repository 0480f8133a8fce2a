"""`ner-fast train` (placeholder until its issue lands)."""
import click


@click.command()
def train_command() -> None:
    """Not built yet."""
    raise click.ClickException("ner-fast train is not built yet")
