"""What every request meets before a view runs: the request size limits."""
