"""ditbench's asv suite (bench_*.py) and pytest-benchmark suite (pytest_suite/).

Nothing here does work at import time: asv imports every module under this folder.
"""
