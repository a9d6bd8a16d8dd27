"""What to do with the harmful rows: relabel targets (``targets``), selection by α, a
threshold or a fraction (``selection``), the strategies (``strategies``: rdia, drop, uids,
optlr, random), the honest baselines (``baselines``), the default strategy ``auto``
(``auto``) and the cleaned file's on-disk view (``files``).
"""
