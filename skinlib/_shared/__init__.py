"""What every layer of skinlib shares and no user needs: atomic writes, file stamps and caches
(:mod:`.files`), the project folder (:mod:`.paths`), Keras imported quietly (:mod:`.tensorflow`).

Private: nothing here is part of the public API, and it imports no other part of skinlib.
"""
