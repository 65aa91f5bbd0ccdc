"""rnn-cell-bench: the science behind the LSTM-vs-GRU workflow.

Modules stay import-light (no TensorFlow at package import) so that the data, aggregation and
plotting stages start quickly; only :mod:`rnn_cell_bench.models` and
:mod:`rnn_cell_bench.training` pull in TensorFlow.
"""

__version__ = "0.1.0"
