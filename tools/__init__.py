"""Host programs (CPython): the virtual handheld and its rig, image builder, device access."""
