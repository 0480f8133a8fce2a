"""Tests of `ner_fast.training` (MXNet and onnx: the training side), laid out as the package is."""
