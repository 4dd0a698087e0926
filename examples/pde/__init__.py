"""2-D Navier-Stokes smoke: simulator, Clifford field models, baselines (``examples/pde/README.md``)."""
