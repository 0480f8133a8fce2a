"""The bundled packages give the same answer on a CPU without AVX-512: an AVX2-only CPU, two ways.

The development machine has AVX-512 (and VNNI, AMX), where onnxruntime's kernels take their AVX-512 paths;
an AVX2-only CPU (issue 19's AMD EPYC) takes others, which sum in another order. This test runs the tagger in
a child process that sees an AVX2-only CPU, tags validation sentences and a raw text alone and batched, and
compares with this process: tags and entities identical, probabilities within the float32 rounding of the
network's sums (`helpers.float_tol`), which is derived from the network, not fitted to one CPU. The child
checks what it sees through NumPy's CPU feature detection. The two ways:

- `qemu`: QEMU's user-mode emulation of an AMD EPYC Rome (`qemu-x86_64 -cpu EPYC-Rome`: its CPUID reports
  AVX2 and FMA and no AVX-512), another CPU's instruction set whole. Emulation is slow (the network runs
  about a thousand times slower: a minute or more for a few sentences), so it takes a handful of
  sentences. `./dev.sh test` installs Debian's `qemu-user` when root (as in CI); without QEMU the test is
  skipped, except in CI (CI set), where that is a failure.
- `cpuid-view`: this CPU with CPUID answering as an AVX2-only one (`benchmarks/cpuid_view.py`), so every
  library runs its AVX2 kernels natively: hundreds of sentences, batched as users batch them. It needs a CPU
  that can fault on CPUID and has AVX-512 to hide (else there is nothing to compare, or the machine is an
  AVX2-only CPU already); elsewhere it is skipped, in CI too (it depends on the hardware).

Speed under either means little: the AVX2 speed figures need a real AVX2 CPU (`cpuid_view.py` says what its
figures are worth).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from helpers import benchmark_module, float_tol, network_terms
from ner_fast import Tagger
from ner_fast.config import ModelConfig
from ner_fast.corpus import Corpus
from ner_fast.package import BUNDLED
from ner_fast.prepare import split_corpus

cpuid_view = benchmark_module("cpuid_view")

QEMU = shutil.which("qemu-x86_64")
# An AVX2-only AMD EPYC (Zen 2), as QEMU models it.
EMULATED_CPU = "EPYC-Rome"
# Validation sentences with entities each way takes: under QEMU each costs seconds to a minute.
SENTENCES = {"qemu": 4, "cpuid-view": 300}
TEXT = "Angela Merkel visited Paris on Monday. The UN met in New York."  # at most 2 tokens a word


def _command(way: str, child: list[str]) -> tuple[list[str], dict[str, str]]:
    """The child's command line and environment for `way`, or a skip (a failure for QEMU in CI) saying what is missing."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    if way == "qemu":
        if QEMU is None:
            reason = "qemu-x86_64 missing (Debian's qemu-user; ./dev.sh test installs it as root)"
            if os.environ.get("CI"):  # .ci/run installs it: there a missing emulator is a failure, not a skip
                pytest.fail(reason, pytrace=False)
            pytest.skip(reason)
        # Inside the CPUID view (`./dev.sh test-isa`'s last pass) the emulated child must not load it: QEMU cannot
        # fault on CPUID, so the view would refuse to start there.
        preload = [lib for lib in env.get("LD_PRELOAD", "").split() if Path(lib).name != cpuid_view.library_name()]
        env["LD_PRELOAD"] = " ".join(preload)
        return [QEMU, "-cpu", EMULATED_CPU, *child], env
    why = cpuid_view.cannot_use()
    if why:
        pytest.skip(why)
    return child, cpuid_view.environment(env)


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


@pytest.fixture(scope="module", params=list(SENTENCES))
def way(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(scope="module")
def sentences(bundled: Corpus, way: str) -> list[list[str]]:
    """Validation sentences with entities, spread over the split."""
    valid = split_corpus(bundled, (0.8, 0.2))[1]
    offsets = valid.offsets.tolist()
    wanted = SENTENCES[way]
    step = max(1, len(valid) // (2 * wanted))
    with_entities = [i for i in range(0, len(valid), step) if any(t != "O" for t in valid.sentence(i).tags)]
    picks = with_entities[:wanted]
    assert len(picks) == wanted
    return [valid.words[offsets[i] : offsets[i + 1]] for i in picks]


@pytest.fixture(scope="module")
def emulated(way: str, sentences: list[list[str]], tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The child's answers on the AVX2-only CPU that `way` makes."""
    folder = tmp_path_factory.mktemp(f"emulated-{way}")
    (folder / "job.json").write_text(json.dumps({"packages": list(BUNDLED), "sentences": sentences, "text": TEXT}),
                                     encoding="utf-8")
    (folder / "child.py").write_text(CHILD, encoding="utf-8")
    command, env = _command(way, [sys.executable, str(folder / "child.py"), str(folder / "job.json"), str(folder / "out.json")])
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=1500)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads((folder / "out.json").read_text(encoding="utf-8"))


def test_the_child_sees_avx2_and_no_avx512(emulated: dict) -> None:
    assert emulated["features"] == {"AVX2": True, "FMA3": True, "AVX512F": False}


@pytest.mark.parametrize("name", list(BUNDLED))
def test_the_same_answer_on_an_avx2_only_cpu(name: str, way: str, emulated: dict, sentences: list[list[str]]) -> None:
    tagger = Tagger.load(name, device="cpu", threads=1)
    theirs = emulated["packages"][name]
    assert len(theirs["alone"]) == len(theirs["batched"]) == len(sentences) == SENTENCES[way]
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
