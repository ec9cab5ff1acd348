"""Results after {"$redirect": url}: decisions, the remote body, sinks, atomic files."""
