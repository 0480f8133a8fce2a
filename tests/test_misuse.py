"""What a careless user or an attacker does to `ner-fast tag` and its outputs: write to a pipe or a device
(/dev/null, /dev/stdout) instead of a file, name an output in a folder that does not exist, stop a long
run with SIGTERM. Each must keep what it did not write and end with one line and an exit code."""
from __future__ import annotations

import os
import signal
import socket
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from helpers import make_checkpoint, sigterm_when
from ner_fast.atomic import atomic_write_text
from ner_fast.cli import cli
from ner_fast.training.export import export_model

NER_FAST = [sys.executable, "-c", "from ner_fast.cli import main; main()"]  # the console script, in this interpreter


@pytest.fixture(scope="module")
def pkg(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("misuse")
    make_checkpoint(folder / "model", buckets=[4, 9], with_pos=False)
    return export_model(folder / "model", folder / "pkg", quantize=None)


def test_a_fifo_is_written_through_not_replaced(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # a reader, so that the writer's open does not block
    try:
        atomic_write_text(fifo, "tagged\n")
        assert stat.S_ISFIFO(os.stat(fifo).st_mode), "the pipe was replaced by a regular file"
        assert os.read(reader, 100) == b"tagged\n"
    finally:
        os.close(reader)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fifo"]  # no temporary left beside it


@pytest.mark.skipif(os.geteuid() != 0, reason="making a device node needs root")
def test_a_character_device_is_written_through_not_replaced(tmp_path: Path) -> None:
    null = tmp_path / "null"
    os.mknod(null, stat.S_IFCHR | 0o666, os.makedev(1, 3))  # a second /dev/null
    atomic_write_text(null, "tagged\n")
    assert stat.S_ISCHR(os.stat(null).st_mode), "the device node was replaced by a regular file"
    assert os.stat(null).st_rdev == os.makedev(1, 3)


def test_a_socket_is_refused_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "s"
    server = socket.socket(socket.AF_UNIX)
    try:
        server.bind(str(path))
        with pytest.raises(OSError, match="not a regular file") as info:
            atomic_write_text(path, "x")
        assert str(path) in str(info.value)
        assert stat.S_ISSOCK(os.stat(path).st_mode)
    finally:
        server.close()


def test_tag_writes_to_dev_stdout_without_force(pkg: Path, tmp_path: Path) -> None:
    """`--output /dev/stdout` (or /dev/null) is a stream: nothing there to lose, so no --force, and
    the tags come out of the pipe."""
    (tmp_path / "in.txt").write_text("Angela Merkel visited Paris.\n", encoding="utf-8")
    done = subprocess.run(
        [*NER_FAST, "tag", str(pkg), str(tmp_path / "in.txt"), "--input-format", "text",
         "--output", "/dev/stdout"],
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 1 and '"text":"Angela Merkel visited Paris."' in lines[0]


@pytest.mark.parametrize("force", [False, True])
def test_dev_stdout_sent_to_a_file_appends_there(pkg: Path, tmp_path: Path, force: bool) -> None:
    """`>> log` with `--output /dev/stdout`: /dev/stdout is then the file itself; it was refused as existing,
    and with --force a temporary was renamed over it (the log's earlier lines lost)."""
    (tmp_path / "in.txt").write_text("Angela Merkel visited Paris.\n", encoding="utf-8")
    log = tmp_path / "log.txt"
    log.write_text("PREVIOUS\n", encoding="utf-8")
    with open(log, "a", encoding="utf-8") as stdout:
        done = subprocess.run([*NER_FAST, "tag", str(pkg), str(tmp_path / "in.txt"), "--input-format", "text",
                               "--output", "/dev/stdout", *(["--force"] if force else [])],
                              stdout=stdout, stderr=subprocess.PIPE, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    lines = log.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "PREVIOUS" and len(lines) == 2 and '"text":"Angela Merkel visited Paris."' in lines[1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.txt", "log.txt"]


def test_an_output_in_a_missing_folder_is_a_usage_error_before_any_work(pkg: Path, tmp_path: Path) -> None:
    (tmp_path / "in.txt").write_text("Paris\n", encoding="utf-8")
    out = tmp_path / "no" / "such" / "out.jsonl"
    result = CliRunner().invoke(cli, ["tag", str(pkg), str(tmp_path / "in.txt"), "--input-format", "text", "--output", str(out)])
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit) and "Traceback" not in result.output
    assert str(out.parent) in result.output and "does not exist" in result.output
    assert not (tmp_path / "no").exists()


def test_sigterm_mid_run_leaves_neither_output_nor_temporary(pkg: Path, tmp_path: Path) -> None:
    source = tmp_path / "big.txt"
    source.write_text("Angela Merkel visited Paris on Monday and met the president .\n" * 200_000, encoding="utf-8")
    out = tmp_path / "out.jsonl"
    # SIGTERM once the temporary output exists: the run is mid-write.
    code, _, err = sigterm_when([*NER_FAST, "tag", str(pkg), str(source), "--input-format", "text", "--output", str(out)],
                                lambda: any(p.name.startswith(".out.jsonl.") for p in tmp_path.iterdir()), "started writing", 60)
    assert code == 128 + signal.SIGTERM, err
    assert "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.txt"]


@pytest.mark.parametrize(
    "args, option",
    [
        (["evaluate", "RUN", "DATA", "--batch-size", "0"], "--batch-size"),
        (["evaluate", "RUN", "DATA", "--batch-size", "-1"], "--batch-size"),  # ran, and scored no sentence
        (["launch", "--workers", "0", "--", "train"], "--workers"),
        (["launch", "--servers", "-1", "--", "train"], "--servers"),
        (["launch", "--timeout", "0", "--", "train"], "--timeout"),
    ],
)
def test_absurd_counts_are_usage_errors(tmp_path: Path, args: list[str], option: str) -> None:
    make_checkpoint(tmp_path / "run", with_pos=False)
    (tmp_path / "data.conll").write_text("Angela NNP B-per\nvisited VBD O\n\nParis NNP B-geo\n", encoding="utf-8")
    given = [str(tmp_path / "run") if a == "RUN" else str(tmp_path / "data.conll") if a == "DATA" else a for a in args]
    result = CliRunner().invoke(cli, given)
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit) and option in result.output


@pytest.mark.parametrize("output_format", ["jsonl", "pretty", "conll"])
def test_a_text_argument_that_is_not_utf8_is_one_line(pkg: Path, output_format: str) -> None:
    # `ner-fast tag --text $'Paris \xff'`: Python hands the byte over as the lone surrogate U+DCFF.
    result = CliRunner().invoke(cli, ["tag", str(pkg), "--text", "Paris \udcff x", "--output-format", output_format])
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "--text: character 6 is the byte 0xff, which is not valid UTF-8" in result.output


def test_piece_lengths_of_plain_words_count_down_by_the_cap() -> None:
    from ner_fast.text import piece_lengths

    lengths = [0, 3, 5, 6, 11, 10, 1]
    expected: list[int] = []
    for n in lengths:  # the reference: count down in steps of 5 (every place is between two plain words)
        left = n
        while left > 5:
            expected.append(5)
            left -= 5
        expected.append(left)
    assert piece_lengths(["w"] * sum(lengths), lengths, 5) == expected
    assert piece_lengths(["w"] * 6, [2, 4], 5) == [2, 4]


def test_piece_lengths_do_not_cut_inside_a_name() -> None:
    from ner_fast.text import piece_lengths

    # Cap 7: "Angela | Merkel" is at the cap; the last place between two plain tokens before it, "the | the", is 5.
    words = ["the"] * 6 + ["Angela", "Merkel", "visited", "Paris", "."]
    assert piece_lengths(["Paris", *words], [1, len(words)], 7) == [1, 5, 6]
    # No plain place after the piece's start: the cap itself, and never an empty piece.
    names = ["Name"] * 16
    assert piece_lengths(names, [16], 7) == [7, 7, 2]
    assert piece_lengths(["a", *names], [17], 7) == [7, 7, 3]


def test_a_sentence_longer_than_a_batch_runs_in_pieces(pkg: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A CoNLL file without blank lines is one sentence: its run's memory grows with its length
    (300,000 tokens: 8 GB). It is tagged as consecutive pieces of at most MAX_BATCH_TOKENS tokens,
    each exactly as that piece alone would be, cut where no name is split if it can (`text.run_cuts`)."""
    from ner_fast import Tagger, tagger as tagger_module

    monkeypatch.setattr(tagger_module, "MAX_BATCH_TOKENS", 7, raising=False)
    tagger = Tagger.load(pkg, device="cpu")
    words = ("Angela Merkel visited Paris on Monday and met Emmanuel Macron in Berlin with the UN".split() * 2)[:23]
    # At 7 "and | met" is plain; at 14 "the | UN" is not, "with | the" (13) is; from 13, nothing plain after "the"
    # within the cap: 20, "on | Monday".
    pieces = [words[0:7], words[7:13], words[13:20], words[20:23]]
    widths = [batch.shape[-1] for batch in tagger.features([words, ["Paris"]])]
    assert widths and max(widths) <= 7  # no graph run is longer than the cap
    expected_tags, expected_probs = tagger.tag_batch(pieces, proba=True)
    for tags, probs in (tagger.tag_batch([words], proba=True), tagger.tag(words, proba=True)):
        tags = tags[0] if isinstance(tags[0], list) else tags
        probs = probs[0] if isinstance(probs, list) else probs
        assert tags == [t for piece in expected_tags for t in piece]
        # Not a rounding bound but the README's promise: a text's scores equal within 1e-6 whatever it is
        # batched with (issue 18, item 1).
        assert np.allclose(probs, np.concatenate(expected_probs), atol=1e-6)
    # Sentences around the long one keep their own tags.
    around = tagger.tag_batch([["Paris"], words, ["Berlin", "is", "big"]])
    assert around[0] == tagger.tag(["Paris"]) and around[2] == tagger.tag(["Berlin", "is", "big"])
    assert around[1] == [t for piece in expected_tags for t in piece]


@pytest.mark.parametrize("closed, args, message", [
    (">&-", ["--text", "Paris"], "stdout is closed"),
    ("<&-", ["-", "--input-format", "text"], "no INPUT"),
])
def test_a_closed_stdout_or_stdin_is_one_line(pkg: Path, closed: str, args: list[str], message: str) -> None:
    done = subprocess.run(["bash", "-c", f'exec "$@" {closed}', "_", *NER_FAST, "tag", str(pkg), *args],
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert message in done.stderr and "Traceback" not in done.stderr


def test_a_stdout_that_cannot_encode_the_output_says_what_to_do(pkg: Path, tmp_path: Path) -> None:
    # It was "Error: 'ascii' codec can't encode characters in position 1-2: ordinal not in range(128)".
    import os

    env = {**os.environ, "PYTHONIOENCODING": "ascii"}
    done = subprocess.run([*NER_FAST, "tag", str(pkg), "--text", "Zoë lives in Zürich."], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stderr
    assert done.stderr.strip() == ("Error: stdout's encoding (ascii) cannot write 'ë': give --output FILE (written as"
                                   " UTF-8), or set PYTHONIOENCODING=utf-8")  # one character, not the whole run of them
    out = tmp_path / "out.jsonl"
    done = subprocess.run([*NER_FAST, "tag", str(pkg), "--text", "Zoë lives in Zürich.", "--output", str(out)],
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "Zoë" in out.read_text(encoding="utf-8")


def test_texts_that_made_the_tokenizer_quadratic_do_not_hang() -> None:
    """`tokenize` retried a trailing run of separators from each of its characters (quadratic: 8,000
    spaces took 6.4 s, so 100,000 spaces, a text the server accepts, would take ~17 minutes holding the
    GIL), and the e-mail pattern did the same with runs of its characters. Not a speed test: a hang
    guard, run in a subprocess with a timeout tens of times what the work takes; the tokens are checked."""
    code = (
        "from ner_fast.text import segment\n"
        "for run in (' ' * 200_000, '\\t\\n\\x00\\u200b' * 50_000):\n"
        "    w, s, e, o = segment('Paris is big' + run)\n"
        "    assert w == ['Paris', 'is', 'big'] and o == [0, 3], (w, o)\n"
        "    assert segment(run) == ([], [], [], [0])\n"
        # The e-mail pattern (texts with '@' or n't) scanned a run of its local-part characters to its end
        # from every token in it: quadratic too ("ab." * 8000 + "@": 1.2 s).
        "for tail in ('@', \" n't\"):\n"
        "    w = segment('ab.' * 100_000 + tail)[0]\n"
        "    assert w == ['ab', '.'] * 100_000 + [tail.strip()], w[-3:]\n"
        "print('ok')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout == "ok\n", done.stderr


@pytest.mark.parametrize("split", ["nan", "0.8,nan", "inf", "nan,0.1"])
def test_a_split_that_is_not_a_number_is_a_usage_error(tmp_path: Path, split: str) -> None:
    (tmp_path / "data.conll").write_text("Angela NNP B-per\nvisited VBD O\n\nParis NNP B-geo\n" * 5, encoding="utf-8")
    result = CliRunner().invoke(cli, ["prepare", str(tmp_path / "data.conll"), "--split", split, "--out", str(tmp_path / "out")])
    assert result.exit_code == 2, result.output
    assert "--split" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "out").exists()


def test_a_pipe_as_input(pkg: Path, tmp_path: Path) -> None:
    """`ner-fast tag <(zcat notes.txt.gz) --input-format text` names a pipe (/dev/fd/63): read like a file."""
    (tmp_path / "notes.txt").write_text("Angela Merkel visited Paris.\nBerlin\n", encoding="utf-8")
    done = subprocess.run(["bash", "-c", f'exec "$@" <(cat {tmp_path / "notes.txt"}) --input-format text', "_",
                           *NER_FAST, "tag", str(pkg)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 2 and '"text":"Angela Merkel visited Paris."' in lines[0] and '"text":"Berlin"' in lines[1]


def test_a_name_at_the_cap_of_a_long_pretokenized_sentence_stays_one_entity() -> None:
    """A pre-tokenized sentence over MAX_BATCH_TOKENS runs in pieces; the cut that fell at the cap split
    "Angela | Merkel" into two one-token entities. It moves back to "the | the" (8190), as the raw-text
    splitter's does, and the sentence's tags are those of its two pieces alone."""
    from ner_fast import Tagger
    from ner_fast.buckets import MAX_BATCH_TOKENS

    tagger = Tagger.load("default", device="cpu")
    words = ["the"] * (MAX_BATCH_TOKENS - 1) + ["Angela", "Merkel", "visited", "Paris", "."]
    tags = tagger.tag(words)
    cut = MAX_BATCH_TOKENS - 2
    assert tags == [t for piece in tagger.tag_batch([words[:cut], words[cut:]]) for t in piece]
    names = [(e.label, e.text) for e in tagger.entities(words)]
    assert ("per", "Angela Merkel") in names and ("per", "Angela") not in names, names
