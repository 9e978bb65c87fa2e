"""The verification suites (pytest), shipped inside the package as `harness.suites`: `imgharness run`
finds them with importlib.resources, from a checkout or an installed package alike."""
