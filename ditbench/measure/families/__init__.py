"""The workload families, one module each (``FAMILY`` in each); registered in
:data:`ditbench.measure.family.FAMILY_MODULES`. See :mod:`ditbench.measure.family`."""
