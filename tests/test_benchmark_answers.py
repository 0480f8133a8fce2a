"""`benchmarks/answers.py`: the bundled packages' answers on this CPU, against those recorded and another CPU's."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers import benchmark_module


@pytest.mark.slow
def test_answers_records_the_tags_digest_and_compares_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    answers = benchmark_module("answers", monkeypatch)
    first = tmp_path / "first.json"
    answers.main(["--package", "default=default", "--json", str(first)])
    result = json.loads(first.read_text())["packages"]["default"]
    assert result["sentences"] == 9592 and result["tokens"] == 209338
    assert len(result["tags_sha256"]) == 64 and int(result["tags_sha256"], 16) >= 0
    # F1 is a ratio of entity counts: within a couple of entity decisions of the bundle step's (the slow test of
    # tests/training/test_bundled_model.py says why 1e-4); whether it is the same float is what the JSON records.
    assert result["scores"]["f1"] == pytest.approx(result["recorded_scores"]["f1"], abs=1e-4)
    assert isinstance(result["scores_equal_recorded"], bool) and result["recorded_on"]

    # The same tagger twice in one process: the same digest. Another CPU's run with other tags: exit status 1.
    second = tmp_path / "second.json"
    answers.main(["--package", "default=default", "--compare", str(first), "--json", str(second)])
    assert json.loads(second.read_text())["packages"]["default"]["same_tags_as_compared"] is True
    doc = json.loads(first.read_text())
    doc["packages"]["default"]["tags_sha256"] = "0" * 64
    other = tmp_path / "other_cpu.json"
    other.write_text(json.dumps(doc))
    capsys.readouterr()
    assert answers.main(["--package", "default=default", "--compare", str(other)]) == 1
    assert "tags NOT the same as" in capsys.readouterr().out


def test_a_compare_file_that_is_missing_or_not_its_json_is_one_line_and_status_2(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    answers = benchmark_module("answers", monkeypatch)
    (tmp_path / "text.json").write_text("not json")
    (tmp_path / "other.json").write_text(json.dumps({"packages": {"default": {"f1": 0.8}}}))
    for name, why in (("missing.json", "No such file or directory"), ("text.json", "not a JSON of benchmarks/answers.py"),
                      ("other.json", "not a JSON of benchmarks/answers.py")):
        with pytest.raises(SystemExit) as stop:
            answers.main(["--package", "default=default", "--compare", str(tmp_path / name)])
        assert stop.value.code == 2
        err = capsys.readouterr().err
        assert err.strip().splitlines()[-1].endswith(f": error: --compare {tmp_path / name}: {why}") and "Traceback" not in err
