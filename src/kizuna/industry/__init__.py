"""Alliance defence-production capacity planner (notional sample data in scenarios/industry/).

Modules: ``tables`` (typed CSV/Parquet reading), ``data`` (tables → validated arrays),
``scenario`` (TOML scenarios → horizon arrays), ``network`` (stock points and shipment arcs),
``model`` (vectorised MIP → HiGHS, fixed-LP duals), ``naive`` (loop-built cross-check),
``results`` (tables, summary, bottlenecks), ``report`` (HTML with inline SVG), ``planner``
(plan / compare), ``generate`` (scaled instances), ``cli`` (``kizuna industry``).
The format and model are documented in docs/industry.md.
"""
