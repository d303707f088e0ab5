"""Subcommands of the qsm-ms command line (one module each)."""
