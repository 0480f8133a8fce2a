"""The training side of ner-fast: everything that may import MXNet or onnx (the `train` extra).

- `model`: the BiLSTM-CNN symbol (MXNet), one per bucket length;
- `iterators`: the bucketing data iterator that feeds `BucketingModule`;
- `crf_loss`: the CRF loss as one compiled MXNet operator;
- `train`: the training loop (`ner-fast train`): the driver, the epochs, a checkpoint after each, Ctrl-C/SIGTERM;
  around it `run_setup` (a run's set-up, resume), `epoch` (one pass over a split and its metrics),
  `run_dir` (the run folder, optimizer state) and `cpu` (flush-to-zero and threads before MXNet);
- `distributed`: training across processes and machines on MXNet's parameter-server kvstore (`ner-fast launch`);
- `evaluate`: scoring a checkpoint with MXNet (`ner-fast evaluate`);
- `export`: MXNet parameters to ONNX graphs in a model package (`ner-fast export`), ensembles, int8;
- `bundle`: building the package that ships inside ner-fast (`./dev.sh build-model`).

The runtime that applications embed (`ner_fast.tagger`, `text`, `features`, `package`, `decode`, ...)
never imports from here (`tests/test_layout.py` checks it); what both sides share (the corpus reader,
vocabularies, bucket rules, checkpoint files, the configuration table) sits beside the runtime, in
`ner_fast` itself, and imports nothing heavy.
"""
import os

# MXNet logs a line per bound graph ("Subgraph backend MKLDNN is activated"): dozens per bucket run. Set here,
# before any module of this package imports MXNet (`ner-fast evaluate` reaches it without `cpu`); a user's value wins.
os.environ.setdefault("MXNET_SUBGRAPH_VERBOSE", "0")
