"""What every layer of skinlib shares and no user needs: atomic writes, file stamps and caches
(:mod:`.files`), the one cached, threaded map over files (:mod:`.filemap`), folders written whole
(:mod:`.folders`), the project folder
(:mod:`.paths`), Keras imported quietly (:mod:`.tensorflow`), the error family (:mod:`.errors`) and
checks of values (:mod:`.checks`).

Private: nothing here is part of the public API, and it imports no other part of skinlib.
"""
