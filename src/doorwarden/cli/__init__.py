"""The `doorwarden` command line (Typer)."""

from doorwarden.cli.app import app


def main() -> None:
    app()


__all__ = ["app", "main"]
