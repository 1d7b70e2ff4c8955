"""Benchmarks of anonchatd against ngircd: ``python -m benchmarks.run``.

See docs/performance.md.  Not tests: nothing here is collected by pytest.
"""
