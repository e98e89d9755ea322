"""The site's model folder: find manifests, verify models before anything runs them, add new ones.

A model is loaded only when every check passes, each failure being one clear line
(:class:`ModelRefused`):

* the ``.onnx`` file's sha256 equals the manifest's ``sha256``;
* every graph node (also in subgraphs and local functions) uses a standard operator domain
  (``""``, ``ai.onnx``, ``ai.onnx.ml``): no custom-op libraries are ever registered;
* initializers kept as external data name files inside the model's folder;
* the graph's image input agrees with the manifest (rank 4, channels, fixed size or any size).

The bytes that were hashed are the bytes onnxruntime loads, so a file swapped after the check is
not run. (A model with external data is loaded from its path: onnxruntime reads those files itself.)
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.models.errors import ModelError, ModelRefused
from app.models.manifest import MANIFEST_SUFFIXES, Manifest, manifest_for, read_manifest

STANDARD_DOMAINS = frozenset({"", "ai.onnx", "ai.onnx.ml"})
_FLOAT = 1  # onnx.TensorProto.FLOAT
_MAX_DEPTH = 4  # folders below the models folder that are searched


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class LoadedModel:
    """A verified model: its manifest, file, and the graph's input; ``session()`` builds a runtime."""

    manifest: Manifest
    path: Path
    manifest_path: Path
    input_name: str
    output_names: tuple[str, ...]
    external_data: bool
    content: bytes = field(repr=False)

    def session(self, *, providers: list[str] | None = None, threads: int | None = None) -> Any:
        """An onnxruntime session on the best available provider (CUDA, DirectML, else CPU)."""
        import onnxruntime as ort

        options = ort.SessionOptions()
        if threads is not None:
            options.intra_op_num_threads = max(1, int(threads))
            options.inter_op_num_threads = 1
        options.log_severity_level = 3
        chosen = providers if providers is not None else best_providers()
        remote = [p for p in chosen if p not in LOCAL_PROVIDERS]
        if remote:  # e.g. onnxruntime's Azure provider sends inputs to a cloud endpoint
            raise ModelRefused(
                f"model {self.manifest.ref}: only local providers may run models, not {remote}"
            )
        try:
            if self.external_data:
                return ort.InferenceSession(str(self.path), options, providers=chosen)
            return ort.InferenceSession(self.content, options, providers=chosen)
        except Exception as exc:  # onnxruntime raises its own exception types
            raise ModelRefused(
                f"model {self.manifest.ref}: onnxruntime cannot load it: {_first_line(exc)}"
            ) from None


#: providers that run on this machine; anything else (a cloud endpoint) could send pixels off site
LOCAL_PROVIDERS = frozenset(
    {
        "CUDAExecutionProvider",
        "DmlExecutionProvider",
        "CPUExecutionProvider",
        "TensorrtExecutionProvider",
        "ROCMExecutionProvider",
        "OpenVINOExecutionProvider",
        "CoreMLExecutionProvider",
    }
)


def best_providers() -> list[str]:
    """CUDA, then DirectML when this onnxruntime build has them; the CPU always comes last."""
    import onnxruntime as ort

    available = set(ort.get_available_providers())
    wanted = [p for p in ("CUDAExecutionProvider", "DmlExecutionProvider") if p in available]
    return [*wanted, "CPUExecutionProvider"]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__


# --- graph checks -----------------------------------------------------------------------------------
def _graphs(graph: Any) -> Iterator[Any]:
    """The graph and every subgraph inside it (If/Loop/Scan bodies)."""
    import onnx

    yield graph
    for node in graph.node:
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.GRAPH:
                yield from _graphs(attr.g)
            elif attr.type == onnx.AttributeProto.GRAPHS:
                for sub in attr.graphs:
                    yield from _graphs(sub)


def _check_domains(model: Any, ref: str) -> None:
    nodes = [n for g in _graphs(model.graph) for n in g.node]
    nodes += [n for f in model.functions for n in f.node]
    for node in nodes:
        if node.domain not in STANDARD_DOMAINS:
            raise ModelRefused(
                f"model {ref}: operator {node.op_type!r} is from the custom domain {node.domain!r}; "
                "only standard ONNX operators are allowed (no custom-op libraries)"
            )


def _check_external_data(model: Any, folder: Path, ref: str) -> bool:
    """Refuse external-data locations that leave ``folder``; True when the model has external data."""
    import onnx

    found = False
    base = folder.resolve()
    for graph in _graphs(model.graph):
        tensors = list(graph.initializer) + [t for n in graph.node for a in n.attribute if a.t for t in [a.t]]
        for tensor in tensors:
            if tensor.data_location != onnx.TensorProto.EXTERNAL:
                continue
            found = True
            location = next((e.value for e in tensor.external_data if e.key == "location"), "")
            target = (base / location).resolve()
            if not location or Path(location).is_absolute() or not target.is_relative_to(base):
                raise ModelRefused(
                    f"model {ref}: tensor {tensor.name!r} keeps its data in {location!r}, outside the "
                    f"model's folder {folder}; external data must stay beside the model"
                )
            if not target.is_file():
                raise ModelRefused(f"model {ref}: external data file {location!r} is missing")
    return found


def _dims(value_info: Any) -> list[int | None]:
    dims: list[int | None] = []
    for d in value_info.type.tensor_type.shape.dim:
        dims.append(int(d.dim_value) if d.HasField("dim_value") and d.dim_value > 0 else None)
    return dims


def _check_input(model: Any, manifest: Manifest, ref: str) -> str:
    initializers = {t.name for t in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in initializers]
    if not inputs:
        raise ModelRefused(f"model {ref}: the graph has no input")
    chosen = inputs[0]
    if manifest.input_name is not None:
        named = [i for i in inputs if i.name == manifest.input_name]
        if not named:
            raise ModelRefused(
                f"model {ref}: the manifest names input {manifest.input_name!r}, the graph has "
                f"{[i.name for i in inputs]}"
            )
        chosen = named[0]
    if chosen.type.tensor_type.elem_type != _FLOAT:
        raise ModelRefused(f"model {ref}: input {chosen.name!r} must be float32")
    dims = _dims(chosen)
    if len(dims) != 4:
        raise ModelRefused(f"model {ref}: input {chosen.name!r} has rank {len(dims)}; images need rank 4")
    if manifest.layout == "NCHW":
        channels, height, width = dims[1], dims[2], dims[3]
    else:
        height, width, channels = dims[1], dims[2], dims[3]
    shown = "x".join("?" if d is None else str(d) for d in dims)
    if channels is not None and channels != manifest.channels:
        raise ModelRefused(
            f"model {ref}: input shape {shown} ({manifest.layout}) has {channels} channel(s), "
            f"the manifest says {manifest.channels}"
        )
    fixed = (height, width)
    if manifest.size is None and (height is not None or width is not None):
        raise ModelRefused(
            f"model {ref}: input shape {shown} is fixed in size, but the manifest says any size; "
            "set [input] size"
        )
    if manifest.size is not None:
        for got, want, axis in zip(fixed, manifest.size, ("height", "width"), strict=True):
            if got is not None and got != want:
                raise ModelRefused(
                    f"model {ref}: input shape {shown} ({manifest.layout}) has {axis} {got}, "
                    f"the manifest says {want}"
                )
    return str(chosen.name)


def verify(
    model_path: Path, manifest: Manifest | None = None, manifest_path: Path | None = None
) -> LoadedModel:
    """Run every check on a model file and return it ready to run; ModelRefused otherwise."""
    import onnx

    if manifest is None:
        manifest_path = manifest_path or manifest_for(model_path)
        manifest = read_manifest(manifest_path)
    ref = manifest.ref
    try:
        content = model_path.read_bytes()
    except OSError as exc:
        raise ModelRefused(f"model {ref}: cannot read {model_path}: {exc.strerror or exc}") from None
    digest = sha256_bytes(content)
    if digest != manifest.sha256:
        raise ModelRefused(
            f"model {ref}: {model_path.name} has sha256 {digest[:12]}…, the manifest says "
            f"{manifest.sha256[:12]}…; the file was changed or the manifest is for another file"
        )
    try:
        model = onnx.load_model_from_string(content)
    except Exception as exc:  # protobuf's DecodeError and friends
        raise ModelRefused(
            f"model {ref}: {model_path.name} is not a valid ONNX file: {_first_line(exc)}"
        ) from None
    _check_domains(model, ref)
    external = _check_external_data(model, model_path.parent, ref)
    input_name = _check_input(model, manifest, ref)
    outputs = tuple(o.name for o in model.graph.output)
    if not outputs:
        raise ModelRefused(f"model {ref}: the graph has no output")
    return LoadedModel(
        manifest=manifest,
        path=model_path,
        manifest_path=manifest_path or model_path.with_suffix(".json"),
        input_name=input_name,
        output_names=outputs,
        external_data=external,
        content=b"" if external else content,
    )


# --- the folder ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RegistryEntry:
    """A manifest found in the models folder, with why it cannot be used (``problem``), if so."""

    manifest_path: Path
    manifest: Manifest | None
    problem: str | None

    @property
    def ok(self) -> bool:
        return self.problem is None


class ModelRegistry:
    """The models folder of the site config (``models_dir``): manifests beside ``.onnx`` files."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    def _manifests(self) -> list[Path]:
        if not self.folder.is_dir():
            return []
        found: list[Path] = []
        for path in sorted(self.folder.rglob("*")):
            depth = len(path.relative_to(self.folder).parts)
            if depth <= _MAX_DEPTH and path.suffix in MANIFEST_SUFFIXES and path.is_file():
                found.append(path)
        return found

    def entries(self, *, check: bool = False) -> list[RegistryEntry]:
        """Every manifest of the folder; ``check`` also verifies each model (hash and graph)."""
        out: list[RegistryEntry] = []
        for path in self._manifests():
            manifest: Manifest | None = None
            try:
                manifest = read_manifest(path)
                if check:
                    verify(path.parent / manifest.file, manifest, path)
                elif not (path.parent / manifest.file).is_file():  # cheap listing: presence only
                    raise ModelRefused(f"model {manifest.ref}: {manifest.file} is missing")
            except ModelError as exc:
                out.append(RegistryEntry(path, manifest, str(exc)))
                continue
            out.append(RegistryEntry(path, manifest, None))
        return out

    def find(self, name: str, version: str | None = None) -> tuple[Path, Manifest]:
        """The manifest of ``name`` (``NAME@VERSION`` also works); the highest version by default."""
        if version is None and "@" in name:
            name, version = name.split("@", 1)
        matches = [
            (e.manifest_path, e.manifest)
            for e in self.entries()
            if e.manifest is not None
            and e.manifest.name == name
            and (version is None or e.manifest.version == version)
        ]
        if not matches:
            wanted = f"{name}@{version}" if version else name
            known = sorted({e.manifest.ref for e in self.entries() if e.manifest is not None})
            raise ModelError(f"no model {wanted} in {self.folder}; there are: {known}")
        return max(matches, key=lambda m: version_key(m[1].version))

    def load(self, name: str, version: str | None = None) -> LoadedModel:
        path, manifest = self.find(name, version)
        return verify(path.parent / manifest.file, manifest, path)

    def load_path(self, relative: str | Path) -> LoadedModel:
        """Load the model whose ``.onnx`` is at ``relative`` inside the folder (as the database has it)."""
        model_path = (self.folder / relative).resolve()
        if not model_path.is_relative_to(self.folder.resolve()):
            raise ModelRefused(f"{relative} is outside the models folder {self.folder}")
        if not model_path.is_file():
            raise ModelError(f"{model_path} is missing from the models folder")
        return verify(model_path)

    def relative(self, model_path: Path) -> str:
        return model_path.resolve().relative_to(self.folder.resolve()).as_posix()

    def add(self, model_or_manifest: Path) -> LoadedModel:
        """Verify a model (its ``.onnx`` or its manifest) and copy it into the folder as NAME/VERSION/."""
        source = Path(model_or_manifest)
        if source.suffix in MANIFEST_SUFFIXES:
            manifest_path = source
            manifest = read_manifest(source)
            model_path = source.parent / manifest.file
        else:
            model_path = source
            manifest_path = manifest_for(source)
            manifest = read_manifest(manifest_path)
        loaded = verify(model_path, manifest, manifest_path)
        if model_path.resolve().is_relative_to(self.folder.resolve()):
            return loaded  # already in the folder
        target = self.folder / manifest.name / manifest.version
        if target.exists() and any(target.iterdir()):
            existing = target / manifest.file
            if existing.is_file() and sha256_file(existing) == manifest.sha256:
                return verify(existing, manifest, target / manifest_path.name)
            raise ModelError(f"{target} already holds another model {manifest.ref}; give it a new version")
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy2(model_path, target / manifest.file)
        shutil.copy2(manifest_path, target / manifest_path.name)
        if loaded.external_data:
            self._copy_external(model_path, target)
        return verify(target / manifest.file, manifest, target / manifest_path.name)

    @staticmethod
    def _copy_external(model_path: Path, target: Path) -> None:
        import onnx

        model = onnx.load_model(str(model_path), load_external_data=False)
        for graph in _graphs(model.graph):
            for tensor in graph.initializer:
                for entry in tensor.external_data:
                    if entry.key == "location":
                        destination = target / entry.value
                        destination.parent.mkdir(parents=True, exist_ok=True)
                        shutil.copy2(model_path.parent / entry.value, destination)


def version_key(version: str) -> tuple[int, int | str]:
    """Numeric versions sort as numbers and after textual ones ("10" > "9" > "beta")."""
    return (1, int(version)) if version.isdigit() else (0, version)
