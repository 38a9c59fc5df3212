"""Typer wiring and Rich rendering only: domain modules never import typer or rich."""
