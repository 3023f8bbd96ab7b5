"""Reference models, reference implementations and FLOP floors for kernel tests and benchmarks
(not part of the installed package)."""
