"""The benchmark harness (`make bench`, `python -m bench --help`). Never run by the test suite."""
