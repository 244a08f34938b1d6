"""Words for PostgreSQL full-text search over Chinese and English.

PostgreSQL's parser does not split Chinese, so text is segmented with jieba
(``cut_for_search`` also emits the shorter words inside long ones) at ingestion
time, in the Celery worker; queries are segmented the same way. The
``shopdesk`` text-search configuration (migration ``knowledge.0001``) stems
English words and drops English stop words; Chinese words pass through as-is.
"""

from __future__ import annotations

import logging
import re
from functools import cache

import jieba

from config.env import env_str

WORD = re.compile(r"\w", re.UNICODE)
# Function words that match almost every passage; dropped from queries only.
QUERY_STOP_WORDS = frozenset(
    "的 了 吗 呢 吧 啊 呀 么 是 我 我的 你 你们 您 他 她 它 在 和 与 及 或 就 都 也 还 要 想 能 可以 会 吗？ "
    "请问 请 怎么 怎样 如何 什么 哪 哪里 哪些 多少 多久 为什么 一下 一个 这个 那个 有 没有 吗 嘛".split()
)


@cache
def _tokenizer() -> jieba.Tokenizer:
    tokenizer = jieba.Tokenizer()
    # jieba caches its parsed dictionary; keep that cache with the project's data.
    cache_dir = env_str("VAR_DIR") or "var"
    tokenizer.tmp_dir = cache_dir
    jieba.setLogLevel(logging.WARNING)
    return tokenizer


def _words(text: str) -> list[str]:
    return [token.strip() for token in _tokenizer().cut_for_search(text.lower()) if WORD.search(token)]


def segment_for_index(text: str) -> str:
    """Space-separated words of ``text``, for the chunk's ``search_text`` column."""
    return " ".join(_words(text))


def query_terms(text: str) -> list[str]:
    """Distinct content words of a question, in order."""
    seen: dict[str, None] = {}
    for word in _words(text):
        if word not in QUERY_STOP_WORDS:
            seen.setdefault(word, None)
    return list(seen)


def websearch_query(terms: list[str]) -> str:
    """Terms OR-ed in ``websearch_to_tsquery`` syntax, which accepts any input without error."""
    return " or ".join(term.replace('"', " ") for term in terms)
