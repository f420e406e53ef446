"""Updates from the issuer: signed packages (update.package), their installers (update.ota:
firmware application image, update.files: vfs files, update.config: terminal parameters)."""
