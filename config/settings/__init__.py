"""Settings package: ``base`` holds what every environment shares; ``dev``, ``test`` and
``prod`` pick the environment; ``celery`` and ``channels`` configure one integration each."""
