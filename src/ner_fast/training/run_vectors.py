"""A training run's pretrained vectors (`--vectors`): read again and checked against what the run's data
(and, resumed, the run itself) recorded, the rows they start (`start_from_vectors`), and the entries
`--freeze-vectors` keeps (`frozen_entries`), which `run_setup.set_up` and `make_trainer` call; and the
vectors a package or a run SOURCE names (`package_vectors`), which export and `--init` read."""
from __future__ import annotations

from collections.abc import Callable, Container, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ner_fast.config import ModelConfig, OptionError, TrainConfig, is_prepared
from ner_fast.vocab import Vocabularies


def pretrained_vectors(cfg: TrainConfig, described: Mapping[str, Any]) -> Any:
    """The `--vectors` of a new run (`vectors.Vectors`), read again for their rows; ValueError when they
    are no longer the ones the data was prepared with (`described`, its `vectors_source`: by digest)."""
    from ner_fast.vectors import read_vectors

    vectors = read_vectors(str(cfg.vectors))
    if vectors.sha256() != described["sha256"]:
        raise ValueError(f"--vectors {cfg.vectors}: not the vectors the data was prepared with (sha256 differs); prepare it again")
    return vectors


def check_resumed_vectors(cfg: TrainConfig, out: Path, recorded: Mapping[str, Any] | None,
                          described: Mapping[str, Any]) -> None:
    """ValueError when a resumed run's `--vectors` file (`described`: as read now) is not the one it started
    with (`recorded`: its config.json): the run went on, and config.json and the package's provenance then
    named the new file's checksum for rows that came from the old one."""
    before = ((recorded or {}).get("data") or {}).get("vectors_source") or {}
    if before.get("sha256") and before["sha256"] != described["sha256"]:
        what = (f"the prepared folder {cfg.data}, prepared again since with other vectors" if is_prepared(cfg.data)
                else f"--vectors {cfg.vectors}, which has changed since")
        raise ValueError(f"{out} was started with {what} (sha256 {before['sha256'][:12]}..., now"
                         f" {described['sha256'][:12]}...): put the original back, or start a new run")


def frozen_entries(cfg: TrainConfig, vectors: Any, vocabs: Vocabularies, config: ModelConfig,
                   say: Callable[[str], None]) -> Any:
    """`--freeze-vectors`: the word-embedding entries kept at `vectors`' values (`frozen.FrozenEntries`); None
    without the option. OptionError when the run has no vectors (a prepared folder made without them)."""
    if not cfg.freeze_vectors:
        return None
    if vectors is None:
        raise OptionError("--freeze-vectors", "applies only with --vectors (DATA was prepared without vectors)")
    from ner_fast.training.frozen import FrozenEntries

    frozen = FrozenEntries.of_vectors(vocabs.words.itos, vectors.index, vectors.matrix, config.word_dim)
    say(f"--freeze-vectors: {frozen.count:,} numbers ({frozen.count // vectors.dim:,} rows x {vectors.dim}) keep"
        f" the vectors' values")
    return frozen


def start_from_vectors(vectors: Any, vocabs: Vocabularies, fresh: np.ndarray, say: Callable[[str], None],
                       taken: Container[str] = ()) -> np.ndarray:
    """The word embedding of a new run with `--vectors`: `fresh` with the row of every word the vectors
    know replaced by its vector (`rows.rows_by_word`, the rule `--init` shares); in an embedding wider
    than the vectors, its vector then zeros (`rows`' docstring says why). `taken`: the words whose rows
    --init SOURCE then overwrites, left out of the count reported."""
    from ner_fast.training.rows import rows_by_word

    rows, known = rows_by_word(vocabs.words.itos, vectors.index, vectors.matrix, fresh, wider=True)
    words = len(vocabs.words) - vocabs.words.first_id  # the vocabulary: training words and those the vectors add
    inside = f" (their {vectors.dim} numbers, then {fresh.shape[1] - vectors.dim} zeros)" if fresh.shape[1] > vectors.dim else ""
    if taken:
        # --init's rows come after these: only the words SOURCE does not know keep the vectors' values
        # (with --init default, whose vocabulary holds GloVe's top words, often none).
        kept = sum(1 for w in vocabs.words.itos if w in vectors.index and w not in taken)
        say(f"word vectors {vectors.name}: {kept:,} of the {words:,} vocabulary words start from them{inside}; the"
            f" {known - kept:,} others they know start from --init SOURCE's rows")
    else:
        say(f"word vectors {vectors.name}: {known:,} of the {words:,} vocabulary words start from them{inside}")
    return rows


def _vectors_record(data: Mapping[str, Any]) -> dict[str, Any] | None:
    """The run's own `--vectors` (its data settings' `vectors_source`), with how many of their words
    were offered to the vocabulary (`vector_words`): `words` counts the whole file, which is not what
    the package knows. None without vectors."""
    described = data.get("vectors_source")
    if not described:
        return None
    return {**described, "vector_words": data["vector_words"]} if data.get("vector_words") else dict(described)


def package_vectors(data: Mapping[str, Any], init: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The vectors a run's rows started from (config.json `data`, `init`), as model.json and a run SOURCE
    record them: its own `--vectors`, then those `--init SOURCE` carried (marked `through` it) and, in turn,
    those SOURCE's record lists under `also`; each once (by checksum, else name). The first is the record,
    the others its `also` list: with `--init default --vectors V` most rows are GloVe's, whose licence
    travels too. None without vectors."""
    chain = [_vectors_record(data)]
    if init and init.get("vectors"):
        inherited = dict(init["vectors"])
        chain.append({**inherited, "through": inherited.get("through") or f"--init {init.get('source')}"})
        chain += list(inherited.get("also") or [])
    records, seen = [], set()
    for record in filter(None, chain):
        key = record.get("sha256") or record.get("name")
        if key not in seen:
            seen.add(key)
            records.append({k: v for k, v in record.items() if k != "also"})
    if not records:
        return None
    first, *others = records
    return {**first, "also": others} if others else first
