"""The on-screen toolkit: fonts, strip rendering, widgets and the screens (ui.screens)."""
