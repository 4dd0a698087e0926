"""Optional bridge to e3nn irreps (arrives with the irreps issue; needs the ``irreps`` extra)."""
