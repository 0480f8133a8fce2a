"""Vocabularies: string <-> id tables, stored as JSON.

Word, character and POS vocabularies reserve id 0 for padding (``<pad>``) and id 1 for anything
unseen (``<unk>``); real entries start at 2, most frequent first. The tag vocabulary has no
reserved ids (tags are labels, padded with ``IGNORE_LABEL`` in `ner_fast.buckets`).

Each `Vocab` lazily builds, once, the lookup structures the compiled kernels use (a hash table over
its entries; for characters a dense code point -> id table) and keeps them, so featurizing one
short sentence at inference time costs no setup.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from ner_fast import _kernels
from ner_fast.atomic import atomic_write_text, read_json
from ner_fast.corpus import Corpus

PAD = 0
UNK = 1
PAD_TOKEN = "<pad>"
UNK_TOKEN = "<unk>"
RESERVED = (PAD_TOKEN, UNK_TOKEN)


def word_key(word: str, lowercase: bool) -> str:
    """The string `word` is looked up by in a word vocabulary: lower-cased (`str.lower`) where it is
    `lowercase`. The one rule of building it, featurizing, `--init` and `--vectors` (`word_keys`)."""
    return word.lower() if lowercase else word


def word_keys(words: Iterable[str], lowercase: bool) -> list[str]:
    """`word_key` of each of `words`."""
    return [word_key(w, lowercase) for w in words]


class Vocab:
    """An id -> string list (`itos`) and its inverse.

    With ``reserved=True`` (words, chars, POS) ``itos[0:2]`` is ``["<pad>", "<unk>"]`` and
    `lookup` maps anything unknown to `UNK`; entries from 2 on are the real strings (a real
    string spelled ``<pad>`` gets an id of its own, never 0). With ``reserved=False`` (tags)
    every entry is real and an unknown string is a `KeyError`.
    """

    def __init__(self, itos: Sequence[str], reserved: bool = True) -> None:
        self.itos = [str(s) for s in itos]
        self.reserved = reserved
        #: Id of the first real entry (2 after <pad> and <unk>, or 0 for tags).
        self.first_id = 2 if reserved else 0
        if reserved and tuple(self.itos[:2]) != RESERVED:
            raise ValueError(f"a reserved vocabulary must start with {list(RESERVED)}")
        entries = self.itos[self.first_id :]
        if len(set(entries)) != len(entries):
            raise ValueError("vocabulary entries must be unique")
        self.stoi = {s: i for i, s in enumerate(entries, self.first_id)}
        self._table: tuple[np.ndarray, _kernels.Tokens] | None = None
        self._char_table: np.ndarray | None = None

    @classmethod
    def from_counts(cls, counts: Mapping[str, int], min_freq: int = 1, reserved: bool = True) -> Vocab:
        """Entries with at least `min_freq` occurrences, most frequent first, ties by string."""
        # Sorting by string, then stably by count (descending), avoids building a key tuple per
        # entry, which dominated for the ~30k GMB words.
        kept = sorted(s for s, n in counts.items() if n >= min_freq)
        kept.sort(key=counts.__getitem__, reverse=True)
        return cls(list(RESERVED) + kept if reserved else kept, reserved)

    @classmethod
    def from_tokens(
        cls, tokens: Sequence[str] | _kernels.Tokens, min_freq: int = 1, reserved: bool = True
    ) -> Vocab:
        """`from_counts` of the strings in `tokens`, counted by the compiled kernel."""
        pinned = tokens if isinstance(tokens, _kernels.Tokens) else _kernels.Tokens(tokens)
        firsts, counts, _ = _kernels.count_unique(pinned)
        strings = pinned.strings
        return cls.from_counts(dict(zip([strings[i] for i in firsts.tolist()], counts.tolist())), min_freq, reserved)

    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, token: object) -> bool:
        return token in self.stoi

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocab) and self.itos == other.itos and self.reserved == other.reserved

    def __repr__(self) -> str:
        return f"Vocab({len(self)} entries, reserved={self.reserved})"

    def lookup(self, token: str) -> int:
        """Id of one string (`UNK` if unseen in a reserved vocabulary, else KeyError)."""
        if self.reserved:
            return self.stoi.get(token, UNK)
        return self.stoi[token]

    def lookup_many(self, tokens: Sequence[str] | _kernels.Tokens, out: np.ndarray | None = None) -> np.ndarray:
        """Ids of many strings as int32, via the compiled hash table (into `out` when given).

        Unknown strings get `UNK` in a reserved vocabulary; in a tag vocabulary they raise KeyError.
        """
        pinned = tokens if isinstance(tokens, _kernels.Tokens) else _kernels.Tokens(tokens)
        table, entries = self.hash_table()
        unknown = UNK if self.reserved else -1
        ids = _kernels.lookup(table, entries, pinned, self.first_id, unknown, out)
        if not self.reserved and len(ids) and ids.min() < 0:
            raise KeyError(f"unknown entry {pinned.strings[int(np.argmin(ids))]!r}")
        return ids

    def char_table(self) -> np.ndarray:
        """Dense int32 table, code point -> id (`UNK` where absent), for single-character entries."""
        if self._char_table is None:
            chars = [s for s in self.itos[self.first_id :] if len(s) == 1]
            size = max((ord(c) for c in chars), default=-1) + 1
            table = np.full(size, UNK, dtype=np.int32)
            for c in chars:
                table[ord(c)] = self.stoi[c]
            self._char_table = table
        return self._char_table

    def hash_table(self) -> tuple[np.ndarray, _kernels.Tokens]:
        """The compiled lookup table over the real entries (built once) and those entries."""
        if self._table is None:
            entries = _kernels.Tokens(self.itos[self.first_id :])
            self._table = (_kernels.build_table(entries), entries)
        return self._table

    def to_json(self) -> list[str]:
        """The id -> string list, as stored in ``vocab.json``."""
        return list(self.itos)

    @classmethod
    def from_json(cls, itos: Any, reserved: bool = True) -> Vocab:
        """A vocabulary from its JSON list, checked (ValueError when malformed)."""
        if not isinstance(itos, list) or not all(isinstance(s, str) for s in itos):
            raise ValueError("a vocabulary must be a JSON list of strings")
        return cls(itos, reserved)


@dataclass(eq=True)
class Vocabularies:
    """The vocabularies one model uses: words, chars, POS (None without POS) and tags."""

    words: Vocab
    chars: Vocab
    pos: Vocab | None
    tags: Vocab
    lowercase: bool = False

    @classmethod
    def build(
        cls,
        corpus: Corpus,
        lowercase: bool = False,
        min_word_freq: int = 1,
        extra_tags: Iterable[str] = (),
    ) -> Vocabularies:
        """Build from a (training) `Corpus`.

        Words are counted lower-cased when `lowercase` (characters never are). Tags also include
        `extra_tags` (e.g. those of the validation split): the label set is not a feature, and a
        validation tag missing from training must still have an id.
        """
        if corpus.tags is None:
            raise ValueError("building vocabularies needs a tagged corpus")
        tokens = _kernels.Tokens(corpus.words)
        words = _kernels.Tokens(word_keys(corpus.words, True)) if lowercase else tokens
        char_counts = _kernels.char_counts(tokens)
        chars = {chr(c): int(char_counts[c]) for c in np.flatnonzero(char_counts).tolist()}
        tag_set = set(corpus.tags) | set(extra_tags)
        return cls(
            words=Vocab.from_tokens(words, min_freq=min_word_freq),
            chars=Vocab.from_counts(chars),
            pos=Vocab.from_tokens(corpus.pos) if corpus.pos is not None else None,
            tags=Vocab(sorted(tag_set, key=_tag_order), reserved=False),
            lowercase=lowercase,
        )

    def with_words(self, words: Iterable[str]) -> Vocabularies:
        """A copy whose word vocabulary also holds `words` (the reserved names and words it has already
        left out), appended after its own entries in the order given, so every existing id stays."""
        itos = list(self.words.itos)
        seen = set(itos)
        for w in word_keys(words, self.lowercase):
            if w not in seen:
                seen.add(w)
                itos.append(w)
        return dataclasses.replace(self, words=Vocab(itos))

    def to_json(self) -> dict[str, Any]:
        """The ``vocab.json`` document (see docs/ARCHITECTURE.md)."""
        return {
            "words": self.words.to_json(),
            "chars": self.chars.to_json(),
            "pos": None if self.pos is None else self.pos.to_json(),
            "tags": self.tags.to_json(),
            "lowercase": self.lowercase,
        }

    @classmethod
    def from_json(cls, doc: Any) -> Vocabularies:
        """The vocabularies from a parsed ``vocab.json`` document, checked (ValueError)."""
        if not isinstance(doc, dict) or not {"words", "chars", "pos", "tags", "lowercase"} <= doc.keys():
            raise ValueError("vocab.json needs the keys words, chars, pos, tags and lowercase")
        if not isinstance(doc["lowercase"], bool):
            raise ValueError("vocab.json: lowercase must be true or false")
        return cls(
            words=Vocab.from_json(doc["words"]),
            chars=Vocab.from_json(doc["chars"]),
            pos=None if doc["pos"] is None else Vocab.from_json(doc["pos"]),
            tags=Vocab.from_json(doc["tags"], reserved=False),
            lowercase=doc["lowercase"],
        )

    def save(self, path: str | Path) -> None:
        """Write as JSON to a temporary file beside `path`, then rename it into place."""
        atomic_write_text(path, json.dumps(self.to_json(), ensure_ascii=False))

    @classmethod
    def load(cls, path: str | Path) -> Vocabularies:
        """Read ``vocab.json``; errors name the file."""
        path = Path(path)
        doc = read_json(path, "vocabulary file")  # its errors name the file once
        try:
            return cls.from_json(doc)
        except ValueError as err:
            raise ValueError(f"{path}: {err}") from None


def _tag_order(tag: str) -> tuple[int, str, str]:
    """``O`` first, then by entity type, ``B-`` before ``I-``."""
    if tag == "O":
        return (0, "", "")
    prefix, _, kind = tag.partition("-")
    return (1, kind, prefix) if kind else (2, tag, "")
