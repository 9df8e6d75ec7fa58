"""The ``pfx`` command: PFX Portal's API from scripts, with the PFXImport cmdlets' verbs."""
