"""The bundled packages give the same answer on a CPU without AVX-512: an AVX2-only AMD EPYC, emulated.

The development machine has AVX-512 (and VNNI, AMX), where onnxruntime's kernels take their AVX-512 paths;
an AVX2-only CPU (issue 19's AMD EPYC) takes others, which sum in another order. This test runs the tagger in
a child process under QEMU's user-mode emulation of an AMD EPYC Rome (`qemu-x86_64 -cpu EPYC-Rome`: its
CPUID reports AVX2 and FMA and no AVX-512, so every library dispatches its AVX2 code; checked through
NumPy's CPU feature detection in the child), tags validation sentences and a raw text alone and batched,
and compares with this process: tags and entities identical, probabilities within the float32 rounding of
the network's sums (`helpers.float_tol`), which is derived from the network, not fitted to one CPU.

Emulation is slow (the network runs about a thousand times slower: a minute or more for a few sentences),
so the test takes a handful of sentences. `./dev.sh test` installs Debian's `qemu-user` when root (as in CI);
without QEMU the test is skipped, except in CI (CI set), where that is a failure.
Speed under emulation means nothing: the AVX2 speed figures need a real AVX2 CPU.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from helpers import float_tol, network_terms
from ner_fast import Tagger
from ner_fast.config import ModelConfig
from ner_fast.corpus import Corpus
from ner_fast.package import BUNDLED
from ner_fast.prepare import split_corpus

QEMU = shutil.which("qemu-x86_64")
if QEMU is None:
    reason = "qemu-x86_64 missing (Debian's qemu-user; ./dev.sh test installs it as root)"
    if os.environ.get("CI"):  # .ci/run installs it: there a missing emulator is a failure, not a skip
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason, allow_module_level=True)

# An AVX2-only AMD EPYC (Zen 2), as QEMU models it.
EMULATED_CPU = "EPYC-Rome"
N_SENTENCES = 4  # validation sentences with entities: each costs seconds to a minute under emulation
TEXT = "Angela Merkel visited Paris on Monday. The UN met in New York."  # at most 2 tokens a word

# What the child runs: the CPU features it sees, then each package's answers alone and batched.
CHILD = textwrap.dedent(
    """
    import json, sys
    from numpy.core._multiarray_umath import __cpu_features__ as features
    from ner_fast import Tagger

    job = json.load(open(sys.argv[1], encoding="utf-8"))
    out = {"features": {k: bool(features.get(k)) for k in ("AVX2", "FMA3", "AVX512F")}, "packages": {}}
    for name in job["packages"]:
        tagger = Tagger.load(name, device="cpu", threads=1)
        alone = [tagger.tag(s, proba=True) for s in job["sentences"]]
        batched = zip(*tagger.tag_batch(job["sentences"], proba=True))
        out["packages"][name] = {
            "alone": [[list(t), p.tolist()] for t, p in alone],
            "batched": [[list(t), p.tolist()] for t, p in batched],
            "entities": tagger(job["text"]).to_dict()["entities"],
        }
    json.dump(out, open(sys.argv[2], "w", encoding="utf-8"))
    """
)


@pytest.fixture(scope="module")
def sentences(bundled: Corpus) -> list[list[str]]:
    """Validation sentences with entities, spread over the split."""
    valid = split_corpus(bundled, (0.8, 0.2))[1]
    offsets = valid.offsets.tolist()
    with_entities = [i for i in range(0, len(valid), 997) if any(t != "O" for t in valid.sentence(i).tags)]
    picks = with_entities[:N_SENTENCES]
    assert len(picks) == N_SENTENCES
    return [valid.words[offsets[i] : offsets[i + 1]] for i in picks]


@pytest.fixture(scope="module")
def emulated(sentences: list[list[str]], tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The child's answers under the emulated AVX2-only CPU."""
    folder = tmp_path_factory.mktemp("emulated")
    (folder / "job.json").write_text(json.dumps({"packages": list(BUNDLED), "sentences": sentences, "text": TEXT}),
                                     encoding="utf-8")
    (folder / "child.py").write_text(CHILD, encoding="utf-8")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([QEMU, "-cpu", EMULATED_CPU, sys.executable, str(folder / "child.py"), str(folder / "job.json"),
                           str(folder / "out.json")], env=env, capture_output=True, text=True, timeout=1500)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads((folder / "out.json").read_text(encoding="utf-8"))


def test_the_child_sees_avx2_and_no_avx512(emulated: dict) -> None:
    assert emulated["features"] == {"AVX2": True, "FMA3": True, "AVX512F": False}


@pytest.mark.parametrize("name", list(BUNDLED))
def test_the_same_answer_on_an_avx2_only_cpu(name: str, emulated: dict, sentences: list[list[str]]) -> None:
    tagger = Tagger.load(name, device="cpu", threads=1)
    theirs = emulated["packages"][name]
    assert len(theirs["alone"]) == len(theirs["batched"]) == len(sentences) == N_SENTENCES
    arch = tagger.package.model["architecture"]
    members = [ModelConfig.from_dict(m) for m in arch.get("members", [arch])]
    for i, sentence in enumerate(sentences):
        tags, probs = tagger.tag(sentence, proba=True)
        # float32 rounding of the widest member's sums over the sentence (the ensemble's mean adds one term).
        tol = max(float_tol(network_terms(m, len(sentence)) + len(members)) for m in members)
        for how in ("alone", "batched"):
            their_tags, their_probs = theirs[how][i]
            assert their_tags == list(tags), (how, i)
            np.testing.assert_allclose(np.asarray(their_probs, dtype=np.float32), probs, rtol=0, atol=tol)
    mine = tagger(TEXT).to_dict()["entities"]
    assert mine, "the text has entities"
    assert len(theirs["entities"]) == len(mine)
    for their, my in zip(theirs["entities"], mine):
        assert {k: v for k, v in their.items() if k != "score"} == {k: v for k, v in my.items() if k != "score"}
        assert abs(their["score"] - my["score"]) <= max(float_tol(network_terms(m, 2 * len(TEXT.split())) + len(members)) for m in members)
