"""n-body dynamics examples: simulators, models, training, prediction (see ``examples/nbody/README.md``)."""
