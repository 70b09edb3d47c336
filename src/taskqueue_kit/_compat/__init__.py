"""Every use the kit makes of a dependency's undocumented internals, one module per dependency.

Each is guarded by the versions it was tested on (:data:`celery.TESTED`) and pinned by a
test in ``tests/_compat/`` that fails loudly when the internal changes. The docs page
"Internals and compatibility" lists them.
"""
