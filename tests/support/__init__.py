"""Set-up shared by the test folders (tests/conftest.py puts tests/ on sys.path): ``support.windows``
opens the main window reliably (offscreen and on a real X server), ``support.models`` builds ONNX
models, ``support.retina`` derives the retina ground truth, ``support.labeling`` works items of the
queue the way labelers do."""
