"""The `ksdk` command line."""
