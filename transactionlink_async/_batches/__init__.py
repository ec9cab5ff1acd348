"""Many executions at once: waiting, launching, wake-ups, and the batch iterators."""
