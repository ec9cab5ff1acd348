"""The `transactionlink` command line: demo, run, status, wait, result, cancel."""
