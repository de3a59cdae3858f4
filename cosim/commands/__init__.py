"""CLI sub-commands, one module each.

Every module in this package that defines ``NAME`` (the sub-command), ``HELP`` (one line),
``add_arguments(parser)`` and ``run(args) -> int`` is discovered by :mod:`cosim.cli`.
Heavy imports belong inside ``run`` so that ``v2g-cosim --help`` stays fast.
"""
