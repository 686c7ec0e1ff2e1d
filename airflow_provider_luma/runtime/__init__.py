"""The worker- and triggerer-side life of one render (see each module's docstring)."""
