"""The roof of govbus: the ``govbus`` command line, the demo and the composition root (:mod:`.bootstrap`).

This is the only package that imports every other one; the floors below it (``gateway``, ``producers``,
``consumers``, ``schemas``, ``bus``) never import it.
"""
