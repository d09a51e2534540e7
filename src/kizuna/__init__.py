"""Kizuna (絆): open, simulation-grade alliance air and missile defence picture."""

__version__ = "0.1.0"
