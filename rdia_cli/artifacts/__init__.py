"""Files rdia writes and reads back between stages, below every other layer but ``errors``:
atomic writes (``atomic``), the scores file (``scores``) and the ``rdia.*`` metadata codec
(``metadata``). Nothing here knows about models or datasets.
"""
