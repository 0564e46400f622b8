"""tidelog's one import namespace.

The source folders stay where the project keeps them, at the top of the checkout
(`broker/`, `protocol/`, `storage/`, `payments/`, `bench/`); each is linked here, so
the installed distribution exposes only `tidelog.*` and never a top-level `broker`
or `payments` that could collide with an application's own (docs/architecture.md).
"""
