"""One module per command (or per group of small commands); each registers on ``cli.app.app``."""
