"""The rig: wire-level simulators of the handheld's peripherals, and their control API."""
