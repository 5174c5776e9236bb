"""The `circuitmap` command line: one entry point over every layer."""
