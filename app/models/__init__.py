"""Machine-learning models on numpy arrays: manifests, the verified registry, the onnxruntime
runner and the on-site micro-model trainer. Imports only :mod:`app.core`; onnx and onnxruntime
are imported inside the functions that need them.

* :mod:`app.models.manifest` — the TOML/JSON file beside each ``.onnx``;
* :mod:`app.models.registry` — the models folder; hash, operator-domain, external-data and input
  checks before anything runs (:class:`app.models.errors.ModelRefused`);
* :mod:`app.models.runner` — preprocessing, batching, tiling, segmentation/detection/classification
  decoding;
* :mod:`app.models.features`, :mod:`app.models.trainer` and :mod:`app.models.onnx_export` — the
  filter bank, the MLP micro-models trained on it, and both exported as one ONNX graph.
"""
