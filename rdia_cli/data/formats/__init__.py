"""One module per input format, each turning a file into a :class:`~.common.Parsed` (features,
labels and what goes with them); :func:`rdia_cli.data.readers.read_dataset` picks the format and
finishes it into a Dataset (class mapping, filtering, finiteness, schema alignment).

``common`` holds what several formats share: :class:`~.common.ReadOptions`,
:class:`~.common.Schema`, the input file and its compression, label encoding and class mapping.
"""
