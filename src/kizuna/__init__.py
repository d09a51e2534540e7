"""Kizuna (絆): open, simulation-grade alliance air and missile defence picture."""

from kizuna._numeric_determinism import request_address_independent_numpy

# Must run before numpy is first imported: see kizuna/_numeric_determinism.py for why.
request_address_independent_numpy()

__version__ = "0.1.0"
