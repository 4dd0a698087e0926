"""Short examples of the other geometric-algebra architectures of the field, built on gatorch."""
