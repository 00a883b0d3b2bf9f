"""Renderings of recorded data: Markdown, static HTML, `--json` shapes, and the read-side queries behind them."""
