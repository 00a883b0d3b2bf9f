"""One module per `release` command; each exposes `register(app)`."""
