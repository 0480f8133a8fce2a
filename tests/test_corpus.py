"""Corpus readers: the GMB CSV as shipped, CoNLL columns, format detection, errors with file:line."""
from __future__ import annotations

import csv
import io
import re
import tempfile
import zipfile
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import write_conll
from ner_fast.cli import cli
from ner_fast.corpus import (Corpus, CorpusError, bundled_corpus_path, parse_corpus, parse_documents, read_corpus,
                             sniff_format)
from ner_fast.schemes import iob1_to_iob2


def reference_gmb(raw: bytes, encoding: str = "cp1252") -> tuple[list[str], list[str], list[str], list[int]]:
    """The GMB CSV read with the csv module, row by row (slow and obviously right): a sentence starts at a
    sentence cell that is not blank and not the one right above it (a column filled down repeats it)."""
    rows = list(csv.reader(io.StringIO(raw.decode(encoding), newline="")))[1:]
    words, pos, tags, starts = [], [], [], []
    above = ""
    for i, (sentence, word, p, tag) in enumerate(rows):
        if sentence.strip() and sentence.strip() != above:
            starts.append(i)
        above = sentence.strip()
        words.append(word)
        pos.append(p)
        tags.append(tag)
    return words, pos, tags, starts + [len(rows)]


def test_bundled_corpus_matches_a_csv_module_reading(bundled: Corpus) -> None:
    with zipfile.ZipFile(bundled_corpus_path()) as archive:
        raw = archive.read("ner_dataset.csv")
    words, pos, tags, offsets = reference_gmb(raw)
    assert bundled.words == words
    assert bundled.pos == pos
    assert bundled.tags == tags
    assert bundled.offsets.tolist() == offsets
    assert bundled.format == "gmb"


def test_bundled_corpus_facts(bundled: Corpus) -> None:
    assert len(bundled) == 47_959
    assert bundled.n_tokens == 1_048_575
    assert bundled.lengths.min() == 1 and bundled.lengths.max() == 104
    assert bundled.words.count("None") == 10
    assert [w for w in bundled.words if "\xa0" in w] == ["5\xa0storm"]
    text = "".join(bundled.words)
    # cp1252, not latin-1: the punctuation is real, the C1 control characters are absent.
    assert "\u2019" in text and "\u2026" in text and "\u2013" in text and "\u2014" in text
    assert not any("\x80" <= ch <= "\x9f" for ch in set(text))
    tag_counts = Counter(bundled.tags)
    assert len(tag_counts) == 17 and tag_counts["O"] == 887_908 and tag_counts["I-nat"] == 51
    assert len(set(bundled.pos)) == 42
    assert bundled.sentence(0).words[:3] == ["Thousands", "of", "demonstrators"]


def test_gmb_quirks(gmb_file: Path) -> None:
    corpus = read_corpus(gmb_file)
    assert corpus.format == "gmb"
    assert corpus.offsets.tolist() == [0, 6, 10]
    assert corpus.words == ["Thousands", "of", "London", "10,000", '"', "None", "5\xa0storm", "It\u2019s", "NA", "null"]
    assert corpus.pos is not None and corpus.pos[3:5] == ["CD", "``"]
    assert corpus.tags == ["O", "O", "B-geo", "O", "O", "O", "O", "O", "B-org", "O"]


def test_gmb_line_endings_and_utf8(tmp_path: Path, gmb_file: Path) -> None:
    expected = read_corpus(gmb_file)
    lf = tmp_path / "lf.csv"
    lf.write_bytes(gmb_file.read_bytes().replace(b"\r\n", b"\n"))
    utf8 = tmp_path / "utf8.csv"
    utf8.write_bytes(gmb_file.read_bytes().decode("cp1252").encode("utf-8") + b"\r\n\r\n")
    for path in (lf, utf8):
        corpus = read_corpus(path, "gmb")
        assert (corpus.words, corpus.pos, corpus.tags) == (expected.words, expected.pos, expected.tags)
        assert corpus.offsets.tolist() == expected.offsets.tolist()


def test_gmb_without_pos_and_other_column_order(tmp_path: Path) -> None:
    path = tmp_path / "nopos.csv"
    path.write_text("Word,Tag,Sentence #\nHello,O,Sentence: 1\nWorld,B-geo,\nBye,O,Sentence: 2\n")
    corpus = read_corpus(path)
    assert corpus.pos is None
    assert corpus.words == ["Hello", "World", "Bye"]
    assert corpus.tags == ["O", "B-geo", "O"]
    assert corpus.offsets.tolist() == [0, 2, 3]


@pytest.mark.parametrize(
    ("content", "line", "message"),
    [
        (b"Sentence #,Word,POS,Tag\r\nSentence: 1,a,DT,O\r\n,b,NN\r\n", 3, "expected 4 fields, found 3"),
        (b"Sentence #,Word,POS,Tag\nSentence: 1,a,DT,O\n,b,NN,O,extra\n", 3, "expected 4 fields, found 5"),
        (b'Sentence #,Word,POS,Tag\nSentence: 1,a,DT,O\n,"x,y",NN\n', 3, "expected 4 fields, found 3"),
        (b'Sentence #,Word,POS,Tag\nSentence: 1,a,DT,O\n,"x"y",NN,O\n', 3, "bad CSV quoting"),
        (b"Sentence #,Word,POS,Tag\n,a,DT,O\n", 2, "no sentence number"),
        (b"Sentence #,Word,POS,Tag\nSentence: 1,a,DT,O\n,,NN,O\n", 3, "empty word"),
        (b"Sentence #,Word,POS,Tag\nSentence: 1,a,DT,O\n, ,NN,O\n", 3, "word ' ': a token must hold a character that is neither whitespace nor an invisible format"),
        # A tag outside every scheme was a ValueError without file or line (from TagScheme, in prepare).
        (b"Sentence #,Word,POS,Tag\r\nSentence: 1,a,DT,O\r\n,b,NN,X\r\n", 3, "tag 'X' is neither O nor PREFIX-TYPE"),
        (b"Sentence #,Word,Tag\nSentence: 1,a,B-\n", 2, "tag 'B-' is neither O nor PREFIX-TYPE"),
        (b"Sentence #,Word,POS,Tag\r\n", 2, "no sentences"),
        (b"Sentence #,Token,Label\nSentence: 1,a,O\n", 1, "header"),
        (b"Sentence #,Word,POS,Tag\nSentence: 1,caf\xe9,NN,O\n,\x81,NN,O\n", 3, "byte 0x81"),
        # A UTF-8 file with one Latin-1 byte was read whole as cp1252: every "é" became "Ã©", silently.
        (b"\xef\xbb\xbfSentence #,Word,POS,Tag\nSentence: 1,Jos\xc3\xa9,NNP,B-per\n,M\xfcller,NNP,I-per\n", 3,
         "byte 0xfc is not valid UTF-8, which the file's byte-order mark declares"),
        (b"Sentence #,Word,POS,Tag\nSentence: 1,Jos\xc3\xa9,NNP,B-per\n,Zo\xc3\xab,NNP,I-per\n,M\xfcller,NN,O\n", 4,
         "byte 0xfc is not valid UTF-8, in a file of 2 UTF-8 characters and 1 byte that is not: it mixes encodings"),
        (b"", 1, "empty file"),
        (b"\n \n", 1, "empty file"),
    ],
)
def test_gmb_errors_name_file_and_line(tmp_path: Path, content: bytes, line: int, message: str) -> None:
    assert_error_at(tmp_path / "bad.csv", content, "gmb", line, message)


def test_cp1252_with_a_utf8_sequence_by_accident_is_still_cp1252(tmp_path: Path) -> None:
    # "heiß”" is DF 94 in cp1252, which is also the UTF-8 of U+07D4: one accidental sequence beside two
    # bytes that are not UTF-8 is a cp1252 file, not a mix.
    path = tmp_path / "de.csv"
    path.write_bytes("Sentence #,Word,POS,Tag\nSentence: 1,heiß”,JJ,O\n,café,NN,O\n,Zoé,NNP,B-per\n".encode("cp1252"))
    assert read_corpus(path).words == ["heiß”", "café", "Zoé"]


@pytest.mark.parametrize("fmt", ["auto", "gmb", "conll", "tokens"])
@pytest.mark.parametrize("content", [b"", b"\xef\xbb\xbf", b" \r\n\t\n\n"], ids=["no-bytes", "bom", "whitespace"])
def test_an_empty_corpus_is_an_error_unless_the_reader_tags(tmp_path: Path, fmt: str, content: bytes) -> None:
    """Training and evaluation (tagged=True) and the default refuse it in one line naming the file; tagging
    (empty_ok) reads it as no sentences, in the format asked for (auto: the name's, else tokens)."""
    path = tmp_path / "empty.txt"
    path.write_bytes(content)
    for tagged in (False, True):
        with pytest.raises(CorpusError) as info:
            read_corpus(path, fmt, tagged=tagged)
        assert str(info.value) == f"{path}:1: empty file"
    corpus = read_corpus(path, fmt, empty_ok=True)
    assert (len(corpus), corpus.n_tokens, corpus.words, corpus.offsets.tolist()) == (0, 0, [], [0])
    assert corpus.tags is None and corpus.pos is None and corpus.source == str(path)
    assert corpus.format == ("tokens" if fmt == "auto" else fmt)
    assert parse_corpus(content, "<stdin>", fmt, empty_ok=True).format == corpus.format
    (tmp_path / "empty.conll").write_bytes(content)
    assert read_corpus(tmp_path / "empty.conll", empty_ok=True).format == "conll"  # rule 1: the extension


def test_empty_ok_is_about_no_content_only(tmp_path: Path) -> None:
    """A file with content that holds no sentence, or a malformed one, is still an error when tagging."""
    assert_error_at(tmp_path / "header.csv", b"Sentence #,Word,POS,Tag\n", "gmb", 2, "no sentences")
    with pytest.raises(CorpusError, match="no sentences"):
        read_corpus(tmp_path / "header.csv", "gmb", empty_ok=True)
    with pytest.raises(CorpusError, match="expected 2 columns"):
        parse_corpus(b"a O\nb c O\n", "<stdin>", "conll", empty_ok=True)
    corpus = parse_corpus(b"\n Hello world \n\n", "<stdin>", "tokens", empty_ok=True)
    assert corpus.words == ["Hello", "world"] and corpus.lines.tolist() == [2, 2]


def test_raw_text_is_a_document_a_line_so_an_empty_input_holds_none() -> None:
    assert parse_documents(b"", "<stdin>") == []
    assert parse_documents(b"\xef\xbb\xbf", "<stdin>") == []
    for blank_lines in (b"\n\n", b"\r\n\r\n", b"\r\r", b"\xef\xbb\xbf\n\n"):
        assert parse_documents(blank_lines, "<stdin>") == ["", ""], blank_lines
    assert parse_documents(b" \t ", "<stdin>") == [" \t "]  # a line of whitespace is a document, as it reads
    assert parse_documents(b"a\n\nb\n", "<stdin>") == ["a", "", "b"]
    assert parse_documents(b"", "<stdin>", whole=True) == [""]  # --document: the input is one document


def assert_error_at(path: Path, content: bytes, fmt: str, line: int, message: str) -> None:
    """Reading `content` as `fmt` fails with `message`, naming `path` and `line`."""
    path.write_bytes(content)
    with pytest.raises(CorpusError, match=message) as info:
        read_corpus(path, fmt)
    assert info.value.line == line
    assert str(info.value).startswith(f"{path}:{line}: ")


def test_conll_four_columns_with_docstart(conll_file: Path) -> None:
    corpus = read_corpus(conll_file)
    assert corpus.format == "conll"
    assert corpus.offsets.tolist() == [0, 4, 6]
    assert corpus.words == ["EU", "rejects", "German", "call", "Peter", "Blackburn"]
    assert corpus.pos == ["NNP", "VBZ", "JJ", "NN", "NNP", "NNP"]
    # IOB1 -> IOB2: an entity's first token becomes B-.
    assert corpus.tags == ["B-ORG", "O", "B-MISC", "O", "B-PER", "I-PER"]


def test_conll_two_columns_has_no_pos(tmp_path: Path) -> None:
    path = write_conll(tmp_path / "two.tsv", [[("New", "B-LOC"), ("York", "I-LOC")], [("caf\u00e9", "O"), ("\U0001f600", "O")]])
    corpus = read_corpus(path)
    assert corpus.pos is None
    assert corpus.words == ["New", "York", "caf\u00e9", "\U0001f600"]
    assert corpus.tags == ["B-LOC", "I-LOC", "O", "O"]


def test_conll_blank_lines_and_crlf(tmp_path: Path) -> None:
    path = tmp_path / "blank.conll"
    path.write_bytes(b"\r\n\r\na O\r\nb B-X\r\n\r\n\r\n\r\nc I-X\r\n")
    corpus = read_corpus(path, "conll")
    assert corpus.offsets.tolist() == [0, 2, 3]
    assert corpus.tags == ["O", "B-X", "B-X"]


def test_a_gmb_csv_in_iob1_is_read_as_iob2_as_conll_is(tmp_path: Path) -> None:
    # Only the CoNLL reader rewrote IOB1: a CSV whose entities all open with I- trained a tag set with
    # no B- tag, which the "bio" decoder can never open an entity with (validation F1 0.0000).
    rows = [("Sentence: 1", "Ann", "I-PER"), ("", "Lee", "I-PER"), ("", "met", "O"), ("", "Bob", "B-PER"),
            ("Sentence: 2", "Rome", "I-LOC"), ("", "Paris", "B-LOC"), ("", "Oslo", "I-LOC"), ("Sentence: 3", "Ny", "I-LOC")]
    path = tmp_path / "iob1.csv"
    path.write_text("Sentence #,Word,Tag\n" + "".join(f"{s},{w},{t}\n" for s, w, t in rows))
    corpus = read_corpus(path)
    assert corpus.tags == ["B-PER", "I-PER", "O", "B-PER", "B-LOC", "B-LOC", "I-LOC", "B-LOC"]
    conll = write_conll(tmp_path / "iob1.conll", [[(w, t) for _, w, t in rows[:4]], [(w, t) for _, w, t in rows[4:7]], [rows[7][1:]]])
    assert read_corpus(conll).tags == corpus.tags


def test_iob1_to_iob2() -> None:
    assert iob1_to_iob2(["I-PER", "I-PER", "I-LOC", "O", "I-LOC", "B-LOC", "I-LOC"]) == [
        "B-PER", "I-PER", "B-LOC", "O", "B-LOC", "B-LOC", "I-LOC",
    ]
    iob2 = ["B-PER", "I-PER", "O", "B-LOC", "B-LOC", "I-LOC"]
    assert iob1_to_iob2(iob2) == iob2


@pytest.mark.parametrize(
    ("content", "line", "message"),
    [
        (b"a NN O\nb NN\n", 2, "expected 3 columns, found 2"),
        (b"a O\n\nb\n", 3, "expected 2 columns, found 1"),
        (b"\na\n", 2, "at least a word and a tag"),
        (b"a O\nb\xff O\n", 2, "not valid UTF-8"),
        (b"-DOCSTART- O\n\n", 1, "no sentences"),
        (b"a O\n\xc2\xa0 O\n", 2, "word '\\\\xa0': a token must hold a character that is neither whitespace nor"),
        # A zero-width space (U+200B) and a word joiner (U+2060) are no word either (Unicode category Cf).
        ("a O\n\u200b\u2060 O\n".encode(), 2, "word '\\\\u200b\\\\u2060': a token must hold a character that is neither"),
        (b"a O\n\x0b\x1c O\n", 2, "word '\\\\x0b\\\\x1c': a token must"),
    ],
)
def test_conll_errors_name_file_and_line(tmp_path: Path, content: bytes, line: int, message: str) -> None:
    assert_error_at(tmp_path / "bad.conll", content, "conll", line, message)


@pytest.mark.parametrize(
    ("content", "line"),
    [
        # A left-to-right mark (U+200E) alone between spaces: re3d's CoNLL files have such tokens.
        ("Angela Merkel\nvisited \u200e Paris\n".encode(), 2),
        ("a b\n\nc \u200b\u2060\n".encode(), 3),
    ],
)
def test_tokens_errors_name_file_and_line(tmp_path: Path, content: bytes, line: int) -> None:
    # The tokens reader took any whitespace-separated run, so such a token reached the tagger, which refused
    # it as "token 1 of sentence 1" with no file or line (and `--output-dir`'s text path dropped it).
    assert_error_at(tmp_path / "bad.tokens", content, "tokens", line, "a token must hold a character that is neither")


def test_unknown_format_name(tmp_path: Path) -> None:
    path = tmp_path / "words.txt"
    path.write_text("hello\n")
    with pytest.raises(CorpusError, match="unknown format 'xml'"):
        read_corpus(path, "xml")


ONE_SENTENCE_CONLL = b"Angela NNP B-per\nMerkel NNP I-per\nvisited VBD O\n"


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        # Rule 1: the extension decides, whatever the content.
        ("x.csv", b"Sentence #,Word,POS,Tag\nSentence: 1,a,DT,O\n", "gmb"),
        ("x.conll", b"Hello world\n", "conll"),
        ("x.tokens", ONE_SENTENCE_CONLL, "tokens"),
        ("X.IOB", b"a O\n", "conll"),
        # Rule 2: a GMB header.
        ("x.txt", b"Sentence #,Word,POS,Tag\r\nSentence: 1,a,DT,O\r\n", "gmb"),
        (None, b"sentence,word,tag\nSentence: 1,a,O\n", "gmb"),
        # Rule 3: one column count >= 2 and a tag in every last column, blank lines or not.
        (None, ONE_SENTENCE_CONLL, "conll"),
        (None, b"-DOCSTART- -X- O O\n\nParis NNP B-NP B-LOC\nis VBZ B-VP O\n\n", "conll"),
        (None, b"a O\nb S-X\n\nc E-X\n", "conll"),
        # Columns as the CoNLL reader splits them, at spaces and tabs: a no-break space is inside a word
        # ('5\u00a0storm' in GMB). Counted with str.split, such a file was read as sentences of tokens.
        (None, "New\u00a0York\tB-geo\nis\tO\nbig\tO\n".encode(), "conll"),
        # Rule 4: otherwise tokens, when nothing looks like raw text.
        (None, b"Hello world\n\nGood morning\n", "tokens"),
        (None, b"Angela Merkel visited Paris .\nThe UN met .\n", "tokens"),
        (None, b"It cost 1,000 dollars in the U.S. .\n", "tokens"),
        (None, b"a O\nb X\n", "tokens"),  # "X" is not a tag
        (None, b"a O\nb c O\n", "tokens"),  # column counts differ
        (None, b"good morning\nthe letter O\nsee you\n", "tokens"),  # one line of three ends in a tag
        # Lines that end in tag-shaped words, of other lengths and without an O: a tokens file (a review).
        (None, b"Traffic stalls on I-95\nTrucks banned from the S-Class lane\nRepairs close I-95\nCrash near exit 12 of I-80\n",
         "tokens"),
        (None, b"Send the E-mail\nRead the E-mail\nno reply yet\n", "tokens"),
        # Rule 3, a malformed line: more than half the lines (three at least) are CoNLL, the rest break it. Read
        # as tokens, the gold tags were tagged as words, exit 0; the CoNLL reader names the line.
        (None, b"He O\nvisited O\nNew York B-geo\n\nShe O\nleft O\n", "conll"),
        (None, b"John B-per\nSmith\n\nHe O\nleft O\n", "conll"),
        (None, b"He O\nJohn FOO\n\nx O\n", "conll"),
    ],
)
def test_sniff_format_rules(name: str | None, content: bytes, expected: str) -> None:
    assert sniff_format(content, "<test>", name) == expected


@pytest.mark.parametrize(
    ("content", "line", "message"),
    [
        (b"\nParis B-geo\n", 2, "give --input-format conll or tokens"),  # one line: CoNLL or one sentence?
        (b"Good morning .\nHello, world .\n", 2, "'o,' has punctuation attached"),
        (b"Good morning.\n", 1, "raw text"),
        (b'He said "Hi" .\n', 1, "raw text"),
        # A JSON lines file was tagged as whitespace tokens ('{"text":"John', 'Paris."}'), exit 0.
        (b'Hello world\n{"text": "John Smith visited Paris ."}\n', 2, "a JSON object: JSON lines are read with --input-format jsonl"),
    ],
)
def test_ambiguous_input_is_refused_naming_input_format(content: bytes, line: int, message: str) -> None:
    with pytest.raises(CorpusError, match=message) as info:
        sniff_format(content, "in.txt")
    assert info.value.line == line and "--input-format" in str(info.value)


@pytest.mark.parametrize(
    ("content", "line", "message"),
    [
        (b"He\tO\nvisited\tO\nNew York\tB-geo\n\nShe\tO\nleft\tO\n", 3, "expected 2 columns, found 3"),
        (b"John B-per\nSmith\n\nHe O\nleft O\n", 2, "expected 2 columns, found 1"),
        (b"He O\nJohn FOO\n\nx O\n", 2, "tag 'FOO' is neither O nor PREFIX-TYPE"),
        # the bad line first: the file's pattern is its lines' most common column count, not its first line's
        (b"New York\tB-geo\nis\tO\nbig\tO\n\nParis\tB-geo\n", 1, "expected 2 columns, found 3"),
        (b"-DOCSTART- -X- O\n\nNew York B-geo\nis O\nbig O\n", 3, "expected 2 columns, found 3"),
    ],
)
@pytest.mark.parametrize("tagged", [False, True], ids=["tag", "prepare"])
def test_a_conll_file_with_a_malformed_line_names_it_whatever_its_name(
        tmp_path: Path, content: bytes, line: int, message: str, tagged: bool) -> None:
    path = tmp_path / "mine.txt"
    path.write_bytes(content)
    with pytest.raises(CorpusError, match=message) as info:
        read_corpus(path, tagged=tagged)
    assert info.value.line == line
    with pytest.raises(CorpusError, match=message):
        parse_corpus(content, "<stdin>", tagged=tagged)


def test_a_tagged_read_refuses_json_lines_as_no_tagged_corpus() -> None:
    with pytest.raises(CorpusError, match="a JSON object: not a tagged corpus") as info:
        sniff_format(b'{"text": "a b"}\n{"text": "c"}\n', "in.jsonl", tagged=True)
    assert info.value.line == 1 and "--input-format" not in str(info.value)


def test_a_tagged_read_names_format_and_reads_one_conll_line_as_conll(tmp_path: Path) -> None:
    # prepare, train and evaluate read tagged corpora with `--format` (auto, gmb, conll): the message told
    # them to give `--input-format`, an option of `ner-fast tag` only, and to tokenize raw text, which
    # they cannot train on. Where only a tagged corpus will do, one line of word and tag is CoNLL.
    assert sniff_format(b"\nParis B-geo\n", "in.txt", tagged=True) == "conll"
    with pytest.raises(CorpusError, match="no data in the first lines") as empty:
        sniff_format(b"-DOCSTART- -X- O\n", "in.txt", tagged=True)
    assert "--format" in str(empty.value) and "--input-format" not in str(empty.value)
    raw = tmp_path / "notes.txt"
    raw.write_text("Angela Merkel visited Paris.\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["train", str(raw), "--out", str(tmp_path / "o")])
    assert result.exit_code == 1 and "--input-format" not in result.output, result.output
    assert result.output.strip().splitlines() == [
        f"Error: {raw}:1: looks like raw text ('Paris.' has punctuation attached), not a tagged corpus: give CoNLL"
        " columns (word ... tag) or the GMB CSV (--format conll or gmb)"
    ]
    assert not (tmp_path / "o").exists()


def test_every_reader_sniffs_alike_and_a_zip_by_its_member_name(tmp_path: Path) -> None:
    conll = tmp_path / "one.txt"
    conll.write_bytes(ONE_SENTENCE_CONLL)
    corpus = read_corpus(conll)
    assert corpus.format == "conll" and corpus.words == ["Angela", "Merkel", "visited"]
    assert corpus.tags == ["B-per", "I-per", "O"] and corpus.lines.tolist() == [1, 2, 3]
    for member, fmt in (("inner.txt", "conll"), ("inner.tokens", "tokens")):
        path = tmp_path / f"{member}.zip"
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr(member, ONE_SENTENCE_CONLL)
        assert read_corpus(path).format == fmt
    tokens = read_corpus(tmp_path / "inner.tokens.zip")
    assert tokens.tags is None and tokens.words[:3] == ["Angela", "NNP", "B-per"] and len(tokens) == 3


def test_cr_only_line_ends(tmp_path: Path) -> None:
    for name, content in (("mac.conll", b"a NN O\rb NN B-X\r\rc NN I-X\r"), ("mac.csv", b"Sentence #,Word,POS,Tag\rSentence: 1,a,NN,O\r,b,NN,B-X\r")):
        path = tmp_path / name
        path.write_bytes(content)
        corpus = read_corpus(path)
        assert corpus.words[:2] == ["a", "b"] and corpus.tags[:2] == ["O", "B-X"]
    assert parse_corpus(b"a b\rc\r", "<stdin>", "tokens").offsets.tolist() == [0, 2, 3]


def test_a_conll_tag_outside_every_scheme_names_its_line(tmp_path: Path) -> None:
    assert_error_at(tmp_path / "bad.conll", b"a O\n\nb PER\n", "conll", 3, "tag 'PER' is neither O nor PREFIX-TYPE")


def test_missing_file_and_zip_members(tmp_path: Path, gmb_file: Path) -> None:
    with pytest.raises(CorpusError, match="cannot read"):
        read_corpus(tmp_path / "absent.csv")
    good = tmp_path / "one.zip"
    with zipfile.ZipFile(good, "w") as archive:
        archive.write(gmb_file, "inner.csv")
    assert read_corpus(good).words == read_corpus(gmb_file).words
    bad = tmp_path / "two.zip"
    with zipfile.ZipFile(bad, "w") as archive:
        archive.write(gmb_file, "a.csv")
        archive.write(gmb_file, "b.csv")
    with pytest.raises(CorpusError, match="exactly one file"):
        read_corpus(bad)


def test_corpus_from_sentences_slicing_and_subset() -> None:
    sentences = [["a", "b"], [], ["c"], ["d", "e", "f"]]
    tags = [["O", "B-X"], [], ["O"], ["B-Y", "I-Y", "O"]]
    corpus = Corpus.from_sentences(sentences, tags=tags)
    assert len(corpus) == 4 and corpus.n_tokens == 6
    assert corpus.lengths.tolist() == [2, 0, 1, 3]
    assert corpus.sentence(-1).words == ["d", "e", "f"] and corpus.sentence(1).words == []
    assert corpus.pos is None and corpus.sentence(0).pos is None
    part = corpus[1:3]
    assert [part.sentence(i).words for i in range(len(part))] == [[], ["c"]]
    picked = corpus.subset([3, 0, 3])
    assert [picked.sentence(i).tags for i in range(3)] == [tags[3], tags[0], tags[3]]
    assert picked.offsets.tolist() == [0, 3, 5, 8]
    with pytest.raises(IndexError):
        corpus.sentence(4)
    with pytest.raises(ValueError, match="one entry per token"):
        Corpus.from_sentences(sentences, tags=[["O"], [], ["O"], ["O"]])
    with pytest.raises(ValueError, match="offsets"):
        Corpus(["a"], None, None, np.array([0, 2]))


# A well-formed UTF-8 sequence of two to four bytes (Unicode's table 3-7: no overlong forms, no surrogates).
UTF8_SEQUENCE = re.compile(
    rb"[\xc2-\xdf][\x80-\xbf]|\xe0[\xa0-\xbf][\x80-\xbf]|[\xe1-\xec\xee\xef][\x80-\xbf]{2}|\xed[\x80-\x9f][\x80-\xbf]"
    rb"|\xf0[\x90-\xbf][\x80-\xbf]{2}|[\xf1-\xf3][\x80-\xbf]{3}|\xf4[\x80-\x8f][\x80-\xbf]{2}")
GMB_FIELD = st.text(alphabet=st.sampled_from('ab ,"\xe9\u2019\xa0N'), min_size=1, max_size=6)
# A word that is whitespace only and a tag outside every scheme are refused
# (test_gmb_errors_name_file_and_line), and an entity opened by I- is rewritten (IOB1 -> IOB2,
# test_a_gmb_csv_in_iob1_is_read_as_iob2_as_conll_is): not ones to compare with the csv module.
GMB_WORD = GMB_FIELD.filter(str.strip)
GMB_TAG = st.one_of(st.just("O"), st.builds("{}-{}".format, st.sampled_from("BES"), GMB_FIELD))


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.tuples(st.booleans(), GMB_WORD, GMB_FIELD, GMB_TAG), min_size=1, max_size=30),
    st.sampled_from(["\r\n", "\n"]),
    st.sampled_from(["cp1252", "utf-8"]),
    st.booleans(),
)
def test_gmb_reader_matches_csv_module(rows, line_end, encoding, filled_down) -> None:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator=line_end)
    writer.writerow(["Sentence #", "Word", "POS", "Tag"])
    cell = ""
    for i, (new, word, pos, tag) in enumerate(rows):
        # GMB's own form names a sentence on its first row; pandas' ffill export on every row.
        cell = f"Sentence: {i}" if new or i == 0 else (cell if filled_down else "")
        writer.writerow([cell, word, pos, tag])
    raw = out.getvalue().encode(encoding)
    # The documented rule: bytes that are valid UTF-8 read as UTF-8, even when written as cp1252
    # (hypothesis found one: "é" + two NBSP is E9 A0 A0 in cp1252, the UTF-8 of U+9820); cp1252 with more
    # such accidental UTF-8 characters than bytes that are not UTF-8 is refused as a mix of encodings.
    try:
        raw.decode("utf-8")
        expected_encoding = "utf-8"
    except UnicodeDecodeError:
        expected_encoding = encoding
    # The oracle: well-formed UTF-8 sequences by Unicode's table 3-7 against the non-ASCII bytes outside them.
    sequences = UTF8_SEQUENCE.findall(raw)
    strays = sum(b >= 0x80 for b in raw) - sum(map(len, sequences))
    if strays and len(sequences) > strays:
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / "gen.csv").write_bytes(raw)
            with pytest.raises(CorpusError, match="mixes encodings"):
                read_corpus(Path(tmp) / "gen.csv")
        return
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "gen.csv"
        path.write_bytes(raw)
        corpus = read_corpus(path)
    words, pos, tags, offsets = reference_gmb(raw, expected_encoding)
    assert (corpus.words, corpus.pos, corpus.tags) == (words, pos, tags)
    assert corpus.offsets.tolist() == offsets


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from([b"a", b" ", b"\xc3\xa9", b"\xe9", b"\xa0", b"\xe2\x80\x99", b"\x92", b"\xf0\x9f\x98\x80",
                                 b"\xed\xa0\x80", b"\xe0\x80", b"\xf0\x90", b"\xef\xbf\xbd", b"\xc0\xaf"]), max_size=12))
def test_a_mixed_encoding_is_told_from_cp1252_as_the_oracle_counts(parts: list[bytes]) -> None:
    from ner_fast.corpus import _encoding_of

    raw = b"".join(parts)
    sequences = UTF8_SEQUENCE.findall(raw)
    strays = sum(b >= 0x80 for b in raw) - sum(map(len, sequences))
    if strays and len(sequences) > strays:
        with pytest.raises(CorpusError, match=f"in a file of {len(sequences)} UTF-8 characters and {strays} byte"):
            _encoding_of(raw, "<test>")
    else:
        assert _encoding_of(raw, "<test>") == ("ascii" if raw.isascii() else "utf-8" if not strays else "cp1252")


def test_a_corpus_built_in_memory_is_checked_and_rewritten_as_a_file_is() -> None:
    """IOB1 tags in memory stayed I-X (F1 0 with the bio decoder, where the same file trained to 1.0); None,
    numbers and bytes became words ('None', "b'John'"); a str sentence was split into characters; a blank
    token was trained on; a bad tag was named without its place."""
    corpus = Corpus.from_sentences([["John", "lives"], ["in", "New", "York"]], tags=[["I-per", "O"], ["O", "I-geo", "I-geo"]])
    assert corpus.tags == ["B-per", "O", "O", "B-geo", "I-geo"]  # the CoNLL reader's rule (schemes.iob1_to_iob2)
    assert Corpus.from_sentences(iter([["a", "b"]])).words == ["a", "b"]  # any iterable, read once
    for sentences, tags, error, said in (
        ([["a", None]], None, TypeError, "<memory>: sentence 0, token 1: the token None (NoneType) is not a str"),
        ([["a"], [b"John"]], None, TypeError, "<memory>: sentence 1, token 0: the token b'John' (bytes) is not a str"),
        (["hello"], None, TypeError, "sentences: sentence 0 is a str, not a list of tokens"),
        ([["a", "\u200b"]], None, ValueError, "<memory>: sentence 0, token 1: word '\\u200b': a token must hold"),
        ([["a"], ["b", "c"]], [["O"], ["O", "garbage"]], ValueError,
         "<memory>: sentence 1, token 1: tag 'garbage' is neither O nor PREFIX-TYPE"),
        ([["a"], ["b"]], [["O"], [3]], TypeError, "<memory>: sentence 1, token 0: the tag 3 (int) is not a str"),
    ):
        with pytest.raises(error) as err:
            Corpus.from_sentences(sentences, tags=tags)
        assert str(err.value).startswith(said), str(err.value)


def test_a_quoted_gmb_header_is_sniffed_as_the_reader_reads_it() -> None:
    # The reader parsed the header as CSV, the sniffer split it at commas: `"Sentence #","Word","POS","Tag"` read
    # with --format gmb, and from stdin (no name) was "raw text ('"S' has punctuation attached)".
    from ner_fast.corpus import parse_corpus

    raw = b'"Sentence #","Word","POS","Tag"\nSentence: 1,Paris,NNP,B-geo\n,is,VBZ,O\n'
    for fmt in ("gmb", "auto"):
        corpus = parse_corpus(raw, "<stdin>", fmt, name=None)
        assert corpus.words == ["Paris", "is"] and corpus.tags == ["B-geo", "O"] and corpus.pos == ["NNP", "VBZ"]


def test_a_gmb_csv_with_the_sentence_column_filled_down_reads_as_gmb_does(tmp_path: Path) -> None:
    """pandas' `ffill` export repeats "Sentence: N" on every row of sentence N: the same sentences, where every
    token was read as a sentence of its own; a repeated number further down is a new sentence, and the same
    value quoted or with spaces around it is the same, and a cell of spaces is empty. In GMB's own form (empty
    cells below a sentence's first row) every filled cell starts a sentence, also one numbered as the sentence
    before it; a stray empty cell in a column filled down starts one at the next filled cell."""
    gmb = "Sentence #,Word,POS,Tag\nSentence: 1,Angela,NNP,B-per\n,Merkel,NNP,I-per\n,left,VBD,O\nSentence: 2,Paris,NNP,B-geo\n,wept,VBD,O\n"
    filled = ("Sentence #,Word,POS,Tag\nSentence: 1,Angela,NNP,B-per\nSentence: 1,Merkel,NNP,I-per\nSentence: 1,left,VBD,O\n"
              "Sentence: 2,Paris,NNP,B-geo\nSentence: 2,wept,VBD,O\nSentence: 1,Again,RB,O\n")
    (tmp_path / "gmb.csv").write_text(gmb)
    (tmp_path / "filled.csv").write_text(filled)
    original, read = read_corpus(tmp_path / "gmb.csv"), read_corpus(tmp_path / "filled.csv")
    assert [read.sentence(i).words for i in range(len(read))] == [["Angela", "Merkel", "left"], ["Paris", "wept"], ["Again"]]
    assert read.offsets.tolist()[:3] == original.offsets.tolist() and read.tags[:5] == original.tags
    (tmp_path / "quoted.csv").write_text('Sentence #,Word,Tag\n"Sentence: 1",A,O\nSentence: 1 ,b,O\n Sentence: 1,C,O\nSentence: 2,D,O\n')
    assert read_corpus(tmp_path / "quoted.csv").offsets.tolist() == [0, 3, 4]
    (tmp_path / "twice.csv").write_text("Sentence #,Word,Tag\nSentence: 1,John,B-per\n,left,O\nSentence: 1,Mary,B-per\n,came,O\n")
    assert read_corpus(tmp_path / "twice.csv").offsets.tolist() == [0, 2, 4]
    (tmp_path / "spaces.csv").write_text("Sentence #,Word,Tag\nSentence: 1,Angela,B-per\n ,Merkel,I-per\n  ,left,O\n")
    spaces = read_corpus(tmp_path / "spaces.csv")
    assert spaces.offsets.tolist() == [0, 3] and spaces.tags == ["B-per", "I-per", "O"]
    (tmp_path / "stray.csv").write_text("Sentence #,Word,Tag\nSentence: 1,A,O\n,b,O\nSentence: 1,c,O\nSentence: 2,D,O\n")
    assert read_corpus(tmp_path / "stray.csv").offsets.tolist() == [0, 2, 3, 4]
