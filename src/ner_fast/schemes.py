"""Tag schemes and chunking: the one home of the IOB2/IOBES rules (NumPy only, no mxnet, no onnx).

Tags are ``O`` or ``PREFIX-TYPE`` with PREFIX one of B, I, E, S (IOB1 and IOB2 use B and I; IOBES adds
E and S). Everything in ner-fast that reads tag sequences goes through this module:

- `entity_spans` cuts tag ids into entities with conlleval's chunk rules (what seqeval reads in its
  default mode): the metrics score them, the tagger reports them (`chunks` for string tags), and
  the corpus readers use them to rewrite IOB1 as IOB2 (`iob1_to_iob2`);
- `transition_rules` says which tag may follow which in a *valid* sequence (the "bio" decoder's
  Viterbi constraints, `ner_fast.decode`).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

# Tag prefixes, as codes.
O, B, I, E, S = 0, 1, 2, 3, 4
PREFIXES = {"B": B, "I": I, "E": E, "S": S}


class TagScheme:
    """Tag id -> (prefix code, entity type id) lookup tables for a tag vocabulary like ["O", "B-geo", ...].

    Raises ValueError naming the first tag that is neither ``O`` nor PREFIX-TYPE.
    """

    def __init__(self, tags: Sequence[str]):
        self.tags = list(tags)
        self.types: list[str] = []
        prefix = np.zeros(len(self.tags), dtype=np.int8)
        kind = np.full(len(self.tags), -1, dtype=np.int64)
        for i, tag in enumerate(self.tags):
            if tag == "O":
                continue
            if not is_tag(tag):
                raise ValueError(not_a_tag(tag))
            head, _, name = tag.partition("-")
            if name not in self.types:
                self.types.append(name)
            prefix[i] = PREFIXES[head]
            kind[i] = self.types.index(name)
        self.prefix = prefix
        self.kind = kind
        self.o_index = self.tags.index("O") if "O" in self.tags else -1
        self.iobes = bool(np.isin(prefix, (E, S)).any())
        # The chunk rules as tables over tag ids, id len(tags) standing for a sentence edge:
        # opens[previous, current] and closes[current, next] (what `entity_spans` looks up).
        edge_prefix = np.append(prefix, np.int8(O))
        edge_kind = np.append(kind, -1)
        self.opens = _opens(edge_prefix[:, None], edge_kind[:, None], prefix[None, :], kind[None, :])
        self.closes = _closes(prefix[:, None], kind[:, None], edge_prefix[None, :], edge_kind[None, :])
        # The same tables as nested lists, for `chunk_ids`' Python loop.
        self._opens_rows: list[list[bool]] = self.opens.tolist()
        self._closes_rows: list[list[bool]] = self.closes.tolist()
        self._kinds: list[int] = kind.tolist()


def is_tag(tag: str) -> bool:
    """Whether `tag` is ``O`` or PREFIX-TYPE (PREFIX in B, I, E, S; TYPE not empty)."""
    head, sep, name = tag.partition("-")
    return tag == "O" or (bool(sep) and head in PREFIXES and bool(name))


def marks_iobes(tag: str) -> bool:
    """Whether `tag` is one only IOBES has (E- or S-): one in a tag set makes the set IOBES (`TagScheme.iobes`)."""
    return tag[:2] in ("E-", "S-")


# Penn Treebank part-of-speech tags that are words (GMB's POS column): one in the tag column means that column
# is missing. Labels such as PER or ORG are not among them.
_PENN_POS = frozenset("CC CD DT EX FW IN JJ JJR JJS LS MD NN NNS NNP NNPS PDT POS PRP PRP$ RB RBR RBS RP SYM TO UH VB"
                      " VBD VBG VBN VBP VBZ WDT WP WP$ WRB".split())


def iob2_of(tag: str) -> str:
    """The IOB2 tag an IOBES tag refines: S-X is B-X (a one-token entity begins it), E-X is I-X; any other
    tag is itself."""
    return {"S-": "B-", "E-": "I-"}.get(tag[:2], tag[:2]) + tag[2:]


def not_a_tag(tag: str) -> str:
    """What is said of a string that `is_tag` refuses (by the corpus readers and `TagScheme`), with how to
    write it where the mistake is a common one: a lower-case o or prefix, BILOU's L- and U-, a POS tag where
    the entity tag is missing, a label without a prefix."""
    head, sep, name = tag.partition("-")
    hint = ""
    if tag in ("o", "0"):
        hint = "; the outside tag is a capital O"
    elif sep and name and head.upper() in PREFIXES:
        hint = f"; prefixes are capital letters: {head.upper()}-{name}"
    elif sep and name and head in ("L", "U"):
        hint = "; BILOU's L- and U- are IOBES's E- and S-"
    elif tag in _PENN_POS:
        hint = "; it reads as a part-of-speech tag: the entity tag is each line's last column"
    elif not sep and tag.isalpha():
        hint = f"; a label without a prefix needs one: B-{tag} on an entity's first token, I-{tag} on the rest"
    return f"tag {tag!r} is neither O nor PREFIX-TYPE (PREFIX one of {', '.join(PREFIXES)}){hint}"


def begin(tag: str) -> str:
    """The B- tag of `tag`'s type: what IOB1's I- that opens an entity becomes in IOB2 (`iob1_starts`)."""
    return "B-" + tag[2:]


def _sentence_edges(lengths: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Boolean masks of each sentence's first and last token in a flat array of `n` tokens."""
    lengths = np.asarray(lengths, dtype=np.int64)
    if lengths.sum() != n:
        raise ValueError(f"lengths add up to {lengths.sum()} but there are {n} tags")
    ends = np.cumsum(lengths)
    starts = ends - lengths
    nonempty = lengths > 0
    first = np.zeros(n, dtype=bool)
    last = np.zeros(n, dtype=bool)
    first[starts[nonempty]] = True
    last[ends[nonempty] - 1] = True
    return first, last


def _opens(prev_prefix: np.ndarray, prev_kind: np.ndarray, prefix: np.ndarray, kind: np.ndarray) -> np.ndarray:
    """Whether a token (prefix, kind) opens a chunk after its neighbour (prev_prefix, prev_kind)."""
    return (
        (prefix == B)
        | (prefix == S)
        | (((prev_prefix == O) | (prev_prefix == E) | (prev_prefix == S)) & ((prefix == I) | (prefix == E)))
        | ((prefix != O) & (prev_kind != kind))
    )


def _closes(prefix: np.ndarray, kind: np.ndarray, next_prefix: np.ndarray, next_kind: np.ndarray) -> np.ndarray:
    """Whether a token (prefix, kind) closes its chunk before its neighbour (next_prefix, next_kind)."""
    return (
        (prefix == E)
        | (prefix == S)
        | (((prefix == B) | (prefix == I)) & ((next_prefix == B) | (next_prefix == S) | (next_prefix == O)))
        | ((prefix != O) & (next_kind != kind))
    )


def entity_spans(tag_ids: np.ndarray, lengths: np.ndarray, scheme: TagScheme) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The entities in flat tag ids: (start, end inclusive, type id) arrays, conlleval's chunk rules.

    A chunk starts at a B or S, at an I or E that follows O, E or S, or wherever the type changes;
    it ends at an E or S, before a B, S or O, or before a type change. So an I- without a B- opens
    an entity, and ``S-per S-per`` is two entities, as conlleval and seqeval (default mode) read them.
    Entities never cross a sentence boundary (`lengths`: the sentences' lengths, back to back).
    """
    tag_ids = np.asarray(tag_ids, dtype=np.int64)
    n = tag_ids.size
    first, last = _sentence_edges(lengths, n)
    # Each token's previous and next tag id, `edge` across a sentence boundary; then the rule tables.
    edge = len(scheme.tags)
    previous = np.empty_like(tag_ids)
    previous[1:] = tag_ids[:-1]
    previous[first] = edge
    following = np.empty_like(tag_ids)
    following[:-1] = tag_ids[1:]
    following[last] = edge
    starts = scheme.opens[previous, tag_ids]
    ends = scheme.closes[tag_ids, following]
    start_pos = np.flatnonzero(starts)
    end_pos = np.flatnonzero(ends)
    # Every start closes the chunk before it, so starts and ends alternate and pair up in order.
    assert start_pos.size == end_pos.size
    return start_pos, end_pos, scheme.kind[tag_ids[start_pos]]


def chunk_ids(tag_ids: Sequence[int], scheme: TagScheme) -> list[tuple[int, int, int]]:
    """(start, end exclusive, type id) of the entities in ONE sentence's tag ids: `entity_spans`'s
    answer from the same rule tables, in a plain Python loop, which beats NumPy's per-call overhead on
    short inputs (a 20-token sentence: ~5 us against ~20 us)."""
    opens, closes, kinds = scheme._opens_rows, scheme._closes_rows, scheme._kinds
    edge = len(scheme.tags)
    found: list[tuple[int, int, int]] = []
    start = -1
    previous = edge
    last = len(tag_ids) - 1
    for i, current in enumerate(tag_ids):
        if opens[previous][current]:
            start = i
        if closes[current][tag_ids[i + 1] if i < last else edge]:
            found.append((start, i + 1, kinds[tag_ids[start]]))
        previous = current
    return found


def chunks(tags: Sequence[str], scheme: TagScheme | None = None) -> list[tuple[str, int, int]]:
    """(type, start, end exclusive) of each entity of one sentence's string tags (`entity_spans`' rules).

    `scheme` is a `TagScheme` holding every tag of `tags` (built from them when None).
    """
    if not len(tags):
        return []
    scheme = scheme or TagScheme(sorted(set(tags)))
    index = {t: i for i, t in enumerate(scheme.tags)}
    ids = np.fromiter((index[t] for t in tags), dtype=np.int64, count=len(tags))
    starts, ends, kinds = entity_spans(ids, np.array([len(tags)]), scheme)
    return [(scheme.types[k], s, e + 1) for s, e, k in zip(starts.tolist(), ends.tolist(), kinds.tolist())]


def iob1_to_iob2(tags: Sequence[str], lengths: Sequence[int] | np.ndarray | None = None) -> list[str]:
    """Tags with every entity opened by ``I-`` reopened with ``B-`` (IOB1 -> IOB2).

    `tags` is one sentence, or many back to back with their `lengths` (one chunking pass for all).
    IOB2 (and IOBES) input comes back unchanged. Raises ValueError for a tag that is not O or PREFIX-TYPE.
    """
    out = list(tags)
    if not out:
        return out
    scheme = TagScheme(sorted(set(out)))
    index = {t: i for i, t in enumerate(scheme.tags)}
    ids = np.fromiter((index[t] for t in out), dtype=np.int64, count=len(out))
    for start in iob1_starts(ids, np.array([len(out)]) if lengths is None else np.asarray(lengths), scheme).tolist():
        out[start] = begin(out[start])
    return out


def iob1_starts(tag_ids: np.ndarray, lengths: np.ndarray, scheme: TagScheme) -> np.ndarray:
    """The flat positions of the entities that open with an ``I-`` tag in tag ids of `scheme` (sentences
    back to back, `lengths`): the tokens `iob1_to_iob2` reopens with ``B-``. For a reader that has tag
    ids already (the GMB CSV's distinct values), which skips `iob1_to_iob2`'s lookup of every tag."""
    starts, _, _ = entity_spans(tag_ids, lengths, scheme)
    return starts[scheme.prefix[np.asarray(tag_ids)[starts]] == I]


def transition_rules(tags: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(allowed[prev, cur], allowed_first[cur], allowed_last[prev]) boolean tables for a tag list.

    IOB2: I-X only after B-X or I-X, never first. With IOBES tags (any E- or S- present), an open
    chunk (B-X, I-X) must also continue with I-X or E-X and cannot end a sentence, and E-X closes
    a chunk like I-X continues one.
    """
    n = len(tags)
    prefix = [t.partition("-")[0] if t != "O" else "O" for t in tags]
    kind = [t.partition("-")[2] for t in tags]
    iobes = any(marks_iobes(t) for t in tags)
    allowed = np.ones((n, n), dtype=bool)
    first = np.ones(n, dtype=bool)
    last = np.ones(n, dtype=bool)
    for j in range(n):
        continues = prefix[j] == "I" or (iobes and prefix[j] == "E")
        if continues:
            first[j] = False
        if iobes and prefix[j] in ("B", "I"):
            last[j] = False
        for i in range(n):
            opens = prefix[i] in ("B", "I")
            if continues and not (opens and kind[i] == kind[j]):
                allowed[i, j] = False
            if iobes and opens and not (prefix[j] in ("I", "E") and kind[j] == kind[i]):
                allowed[i, j] = False
    return allowed, first, last


def first_invalid(tag_ids: np.ndarray, lengths: np.ndarray, tags: Sequence[str]) -> tuple[int, str] | None:
    """Where flat tag ids (sentences back to back, `lengths`) first break `transition_rules(tags)`:
    (token index, ``"first"``: its tag cannot open a sentence, ``"follow"``: it cannot follow the tag
    before it, ``"last"``: it cannot end a sentence), or None when every sentence is valid.

    The "bio" decoder only ever outputs valid sequences, so a training corpus that is not one (a BIO
    corpus with one stray S- tag: every ``B-X O`` breaks IOBES) teaches tags it can never give back."""
    tag_ids = np.asarray(tag_ids, dtype=np.int64)
    allowed, first, last = transition_rules(tags)
    is_first, is_last = _sentence_edges(lengths, tag_ids.size)
    follows = np.ones(tag_ids.size, dtype=bool)
    follows[1:] = allowed[tag_ids[:-1], tag_ids[1:]]
    # Per token, the first rule it breaks: at a sentence start only "first" applies, elsewhere "follow",
    # then "last" at a sentence end.
    broken = [(is_first & ~first[tag_ids], "first"), (~is_first & ~follows, "follow"), (is_last & ~last[tag_ids], "last")]
    found = [(int(np.flatnonzero(mask)[0]), order, rule) for order, (mask, rule) in enumerate(broken) if mask.any()]
    if not found:
        return None
    index, _, rule = min(found)
    return index, rule
