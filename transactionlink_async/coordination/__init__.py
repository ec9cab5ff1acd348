"""Many processes acting as one client: the in-process default and Redis."""
