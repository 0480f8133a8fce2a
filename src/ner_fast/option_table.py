"""The option table: every `--option` of every `ner-fast` command, one row (`ner_fast.option.Option`) each.

A row holds the option's name, kind, default (one value, or one per recipe), help, range or choices
and the commands that offer it (`commands=`); the commands get their click options from here
(`command_options`), and nothing else writes a `click.option`: `tests/test_options_table.py` walks every
command and checks it.

The rows of `prepare` and `train` that shape a training run (`feeds` "data", "train" or "model")
are `OPTIONS`: the defaults of `TrainConfig`, `ModelConfig` and `prepare()`, `RECIPES` and their range
checks come from them (`ner_fast.config`). The rows of `ner-fast serve` are the defaults and ranges of
`serve.settings.Settings`, checked by the same rule (`Option.check`) whether set on the command line or
in Python.

To add an option: one row here (and, for a training option, one field in the dataclass it feeds,
default `default_of("name")`; `tests/test_config.py` checks that the two agree).

This module imports no engine (no mxnet, onnx, onnxruntime, click): the runtime reads it.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping

from ner_fast.buckets import MAX_BATCH_TOKENS, MAX_BUCKET_LENGTH
from ner_fast.char_cache import DEFAULT_CHAR_CACHE
from ner_fast.corpus import TAG_FORMATS, TAGGED_FORMATS
from ner_fast.decode import DECODERS
from ner_fast.devices import DEFAULT_DEVICE, DEVICES
from ner_fast.engine import BATCH_SIZE as PIPE_BATCH_SIZE
from ner_fast.engine import TAG_BATCH_SIZE
from ner_fast.errors import OptionError
from ner_fast.labels import LABEL_SETS, PACKAGE
from ner_fast.option import DEFAULT_RECIPE, FEEDS, RECIPE_NAMES, Option, recipe
from ner_fast.package import DEFAULT_BUCKETS, DEFAULT_QUANTIZE, QUANTIZATIONS
from ner_fast.partition import JSONL, PARTITION_SIZE, SCHEDULER_TIMEOUT, TEXT_FIELD

KVSTORES = ("local", "device", "dist_sync", "dist_device_sync", "dist_async")
#: The kvstores of a run across processes (`ner-fast launch`: a parameter server and its workers).
DIST_KVSTORES = tuple(k for k in KVSTORES if k.startswith("dist"))


def is_distributed(kvstore: str | None) -> bool:
    """Whether `--kvstore` trains one run across processes (`DIST_KVSTORES`)."""
    return kvstore in DIST_KVSTORES

#: `--lr-decay-sentences`: the training sentences of the bundled corpus's default 80/20 split, the epoch
#: over which `--lr-decay` 0.9 was measured (docs/TRAINING.md, "The recipe").
LR_DECAY_SENTENCES = 38_367
#: `ner-fast tag --output-format`.
OUTPUT_FORMATS = ("conll", "jsonl", "pretty")
#: The longest `serve --max-wait-ms`: a free worker holding a lone request back for more than 10 s only
#: delays answers (NaN, inf or 1e308 made the server accept requests and never answer them).
MAX_WAIT_MS = 10_000.0
#: The longest any timeout may be (serve's connection timeouts, `tag --scheduler-timeout`): an hour.
MAX_TIMEOUT_SECONDS = 3600.0
#: The parameters a run keeps (`--which`, `--checkpoint`; `checkpoint.params_file`): those that validated best, and
#: the latest epoch's.
CHECKPOINTS = ("best", "last")
#: Caps of the network's sizes given on the command line (`Option.cap`), 10x and more beyond any published setting of
#: this network (Chiu & Nichols 2016: 275 LSTM units, 300-dimensional words, 53 filters), so that a mistyped size is
#: refused in one line rather than allocating until the kernel kills the process (`--hidden 100000`: a 298 GiB
#: embedding of the vectors' words; `--max-token-chars 100000`: 24 GB for three sentences). Runs recorded with more
#: (before the caps) still read.
MAX_WIDTH = 4096
MAX_LAYERS = 8
MAX_TOKEN_CHARS = 128
#: `train --distill-target`: what a CRF teacher gives the student (`training.distill`).
DISTILL_TARGETS = ("probs", "marginals", "crf")
LABELS_METAVAR = "|".join(LABEL_SETS) + "|FILE.json"
PREPARE_TRAIN = ("prepare", "train")


def _json(command: str, help: str) -> Option:
    return Option("as_json", "flag", False, help, flag="--json", commands=(command,))


def _device(command: str) -> Option:
    return Option("device", "choice", DEFAULT_DEVICE, "", choices=DEVICES, commands=(command,))


def _serve_timeout(name: str, default: float, help: str) -> Option:
    return Option(name, "float", default, help, low=0, low_open=True, high=MAX_TIMEOUT_SECONDS, unit=" seconds",
                  commands=("serve",))


# --------------------------------------------------------------------------- the table, in each command's order

TABLE: tuple[Option, ...] = (
    # prepare and train: where they write
    Option("out", "folder", None, "Folder to write: new, empty, or an earlier `ner-fast prepare` output (replaced"
           " only when the whole run succeeds).", required=True, commands=("prepare",)),
    Option("force", "flag", False, "Also write into a non-empty folder that is not a prepare output (its other"
           " files are kept).", commands=("prepare",)),
    Option("out", "folder", None, "Checkpoint folder to create (required unless --resume).", path_type=str,
           commands=("train",)),
    Option("resume_dir", "dir", None, "Continue the run in this folder (only --epochs, --patience and --context may"
           " change).", flag="--resume", path_type=str, commands=("train",)),
    Option("force", "flag", False, "Start over a finished run in --out, or write beside other files there (only the"
           " run's own files are replaced; nothing else is removed).", commands=("train",)),
    Option("recipe_name", "choice", None, "Defaults of the options marked [tuned: ...; tutorial: ...]: the tuned ones,"
           f" or exactly the tutorial's.  [default: {DEFAULT_RECIPE}]", flag="--recipe", choices=RECIPE_NAMES,
           optional=True, commands=PREPARE_TRAIN),
    # prepare and train: what shapes a training run (`OPTIONS`; `feeds` the dataclass)
    # data: corpus -> prepared buckets (prepare and train)
    Option("format", "choice", "auto", "Corpus format.", "data", choices=TAGGED_FORMATS, commands=("prepare", "train")),
    Option("dev", "path", None, "A separate validation corpus (then all of DATA trains).", "data", optional=True,
           commands=("prepare", "train")),
    Option("split", "split", (0.8, 0.2), "Sequential TRAIN[,VALID] fractions of DATA (0.8 means 0.8,0.2).", "data",
           commands=("prepare", "train"), unused_with=("dev", "then all of DATA trains and --dev validates")),
    Option("max_sentences", "int", None, "Use only the first N sentences of DATA (quick runs).", "data", low=1,
           optional=True, commands=("prepare", "train")),
    Option("max_token_chars", "int", 20, "Characters kept per token (cut or padded).", "data", low=1,
           cap=MAX_TOKEN_CHARS, commands=("prepare", "train")),
    Option("buckets", "buckets", None, "Bucket lengths, comma separated, each at most"
           f" {MAX_BUCKET_LENGTH} (default: every length with at least --batch-size training sentences, the"
           " tutorial's rule; see --keep-long).", "data", high=MAX_BUCKET_LENGTH, unit=" tokens", optional=True,
           commands=("prepare", "train")),
    Option("keep_long", "bool", recipe(True, False), "Training sentences longer than the largest bucket get buckets"
           " of their own, each holding --batch-size of them but the last, instead of being cut to it (up to"
           f" {MAX_BATCH_TOKENS} tokens a batch; never more cut than with --no-keep-long, the tutorial's rule).", "data",
           commands=("prepare", "train")),
    Option("lowercase", "bool", recipe(True, False), "Look words up lower-cased.", "data",
           commands=("prepare", "train")),
    Option("vectors", "text", None, "Pretrained word vectors: glove-6b-50d (the `vectors` extra) or a GloVe/word2vec"
           " text file. Known words start from them; the word dimension follows them, or a wider --word-dim holds them"
           " in its first columns (docs/TRAINING.md).", "data",
           optional=True, commands=("prepare", "train")),
    Option("vector_words", "int", 100_000, "With --vectors: the words among this many most frequent of the vectors"
           " join the vocabulary after the training words.", "data", low=0, zero="only the training words",
           commands=("prepare", "train"), needs="vectors"),
    Option("freeze_vectors", "bool", False, "With --vectors: the numbers of every word row that starts from a vector"
           " (its first d, the vectors' own) keep their pretrained values throughout training; other rows, and the"
           " extra numbers of a wider --word-dim, train (docs/TRAINING.md, 'Frozen vectors').", "train",
           commands=("train",), needs="vectors"),
    # train: optimizer, stopping, devices
    Option("batch_size", "int", 50, "Sentences per batch (prepare: the default buckets need this many sentences).",
           "train", low=1, commands=("prepare", "train")),
    Option("epochs", "int", 30, "Epoch cap.", "train", low=1, resumable=True),
    Option("patience", "int", 5, "Stop after this many epochs without a better validation entity F1 (counted once it is above 0).", "train",
           low=0, zero="never", resumable=True),
    Option("learning_rate", "float", recipe(0.002, 0.01), "Adam learning rate.", "train", flag="--lr", low=0,
           low_open=True),
    Option("beta1", "float", 0.9, "Adam beta1.", "train", low=0, high=1, high_open=True),
    Option("beta2", "float", 0.999, "Adam beta2.", "train", low=0, high=1, high_open=True),
    Option("epsilon", "float", 1e-8, "Adam epsilon.", "train", low=0, low_open=True),
    Option("lr_decay", "float", recipe(0.9, 1.0), "Multiply the learning rate by this after every epoch (1: constant),"
           " or less often on a small corpus (--lr-decay-sentences).", "train", low=0, high=1, low_open=True),
    Option("lr_decay_sentences", "int", LR_DECAY_SENTENCES, "--lr-decay steps at most once every this many training"
           " sentences: once an epoch on a corpus this large or larger (the default: the bundled corpus's training"
           " split, where the decay was measured), once every as many sentences on a smaller one, whose short epochs"
           " would otherwise end its learning within a few hundred updates.", "train", low=1,
           unused_at=("lr_decay", 1.0, "a constant learning rate")),
    Option("clip_gradient", "float", recipe(5.0, 0.0), "Clip each gradient element to [-x, x].", "train", low=0,
           zero="never"),
    Option("word_dropout", "float", recipe(0.1, 0.0), "Replace training words by UNK with this probability.",
           "train", low=0, high=1, high_open=True),
    Option("decode", "choice", recipe("bio", "argmax"), "Tag decoding for metrics and model selection: best valid"
           " BIO sequence, or per-token argmax (with --crf: the CRF's best path).", "train", choices=DECODERS),
    Option("average", "float", recipe(0.999, 0.0), "Also validate an exponential moving average of the parameters with this"
           " decay per update (Polyak averaging, e.g. 0.999; warmed up: min(decay, (1+t)/(10+t)) at update t); each"
           " epoch keeps whichever of it and the live parameters scores better, until the average has scored better"
           " two epochs in a row (then only the average is validated).", "train", low=0, high=1,
           high_open=True, zero="off"),
    # numpy's and MXNet's seeds are 32-bit unsigned: outside, numpy refused deep in the set-up (exit 1).
    Option("seed", "int", 0, "Seeds initialisation, shuffling and dropout.", "train", low=0, high=2**32 - 1),
    Option("context", "context", "cpu", "cpu, gpu:0 or several: gpu:0,gpu:1.", "train", resumable=True),
    Option("kvstore", "choice", "device", "How gradients are combined across devices / machines (dist_*: see"
           " `ner-fast launch`).", "train", choices=KVSTORES),
    # model: the architecture (ModelConfig)
    Option("char_dim", "int", 25, "Character embedding size.", "model", low=1, cap=MAX_WIDTH),
    Option("filter_widths", "ints", [3], "Comma-separated character convolution widths.", "model", low=1,
           cap=MAX_TOKEN_CHARS),
    Option("filters", "int", 53, "Filters per width.", "model", low=1, cap=MAX_WIDTH),
    Option("word_dim", "int", 150, "Word embedding size (with --vectors: theirs when left out, at least theirs when"
           " given).", "model", low=1, cap=MAX_WIDTH),
    Option("use_casing", "bool", recipe(True, False), "Add a casing-class embedding.", "model", flag="--casing"),
    Option("casing_dim", "int", 10, "Casing embedding size.", "model", low=1, cap=MAX_WIDTH,
           unused_at=("use_casing", False, "no casing embedding")),
    Option("use_pos", "bool", recipe(False, True), "Use one-hot POS where the corpus has it.", "model", flag="--pos"),
    Option("hidden", "int", 275, "LSTM units per direction.", "model", low=1, cap=MAX_WIDTH),
    Option("num_layers", "int", 1, "LSTM layers.", "model", flag="--layers", low=1, cap=MAX_LAYERS),
    Option("directions", "int", 2, "LSTM directions per layer: 2 (a BiLSTM) or 1 (forward only: about half the"
           " LSTM's cost; no --lm-aux-weight).", "model", low=1, high=2),
    Option("dropout", "float", recipe(0.5, 0.1), "Dropout on the LSTM inputs and outputs.", "model", low=0, high=1,
           high_open=True),
    Option("crf", "bool", recipe(True, False), "Linear-chain CRF output layer (--no-crf: per-token softmax).", "model"),
    Option("pos_aux_weight", "float", recipe(1.0, 0.0), "Weight of the auxiliary POS output head's loss (multi-task: predicts the"
           " corpus's POS column from the BiLSTM; needs --no-pos).", "model", low=0, zero="no POS head"),
    Option("lm_aux_weight", "float", 0.0, "Weight of the auxiliary language-model loss (Rei 2017: the forward LSTM"
           " predicts the next word, the backward one the previous word; needs --directions 2).", "model", low=0,
           zero="none"),
    Option("lm_vocab", "int", 7500, "Words the language-model loss predicts (the most frequent; the rest count as"
           " unknown).", "model", low=3, unused_at=("lm_aux_weight", 0.0, "no language-model loss")),
    Option("lm_dim", "int", 50, "Width of the language-model head's tanh layer.", "model", low=1, cap=MAX_WIDTH,
           unused_at=("lm_aux_weight", 0.0, "no language-model loss")),
    Option("fused", "bool", True, "Fused RNN operator (--unfused: unrolled LSTM cells).", "model", flag="--fused"),
    # starting from an earlier model (`training/init_source.py`, docs/TRAINING.md "Training from the bundled model")
    Option("init", "text", None, "Start from SOURCE: a training run folder, a model package folder, or a bundled"
           " model's name: `default` (the bundled model), `ensemble`. The bare name is the bundled model; a path written"
           " as a path (with a slash, or starting with '.': `./default`) is always the folder, and is recorded as one."
           " Every parameter whose role exists in both networks starts from it (words and tags"
           " by name); architecture options left out are SOURCE's.", "train", optional=True),
    Option("freeze_epochs", "int", 1, "With --init: epochs during which the parameters taken whole from SOURCE"
           " (character convolutions, casing, LSTM) stay fixed while the word and character rows (matched by"
           " name) and the output layer learn.", "train", low=0,
           zero="never frozen", needs="init"),
    Option("init_lr_scale", "float", 0.5, "With --init: learning-rate multiplier of the parameters taken whole from"
           " SOURCE once they train.", "train", low=0, high=1, low_open=True, needs="init"),
    # case robustness (`recase.py`) and distillation (`training/distill.py`, docs/TRAINING.md "One distilled network")
    Option("recase", "float", 0.0, "Add re-cased copies of this fraction of the training sentences (half of the"
           " copies lower-cased, a quarter upper, a quarter title; gold tags unchanged).", "data", low=0, high=1,
           zero="no copies", commands=("prepare", "train")),
    Option("teacher", "text", None, "Distil from TEACHER: a model package folder, a bundled model's name (`default`:"
           " the bundled model; `ensemble`, its teacher; `./default` is the folder, as for --init) or a training run folder; several, comma-separated, are averaged. Its per-token tag distributions over the"
           " training split (on the original casing) join the gold loss.", "train", optional=True),
    Option("distill_weight", "float", 0.5, "With --teacher: weight ALPHA of the distillation loss; the gold loss"
           " gets 1 - ALPHA.", "train", low=0, high=1, needs="teacher"),
    Option("distill_temperature", "float", 1.0, "With --teacher: temperature T of the distillation loss (the student's"
           " scores and the teacher's distribution both softened by T; the loss is scaled by T squared; with"
           " --distill-target crf only the teacher's marginals are softened, and not scaled).", "train",
           low=0, low_open=True, needs="teacher"),
    Option("distill_target", "choice", "probs", "With --teacher: what the student learns from a teacher with a CRF"
           " output layer: its per-token softmax (probs) or the CRF's per-token marginals, its transition scores"
           " included (marginals; a teacher without a CRF gives its softmax either way), each learned by the"
           " student's per-token softmax; or those marginals learned by the student's CRF, its expected"
           " likelihood of tags drawn from them (crf; the student needs --crf).", "train",
           choices=DISTILL_TARGETS, needs="teacher"),
    # prepare and train: what they print
    _json("prepare", "Print the summary as JSON on stdout."),
    Option("progress", "bool", True, "Progress bars (by default on a terminal only, never in a redirected log; given, always).", commands=("train",)),
    _json("train", "Print the run's result as JSON on stdout."),
    # evaluate
    Option("which", "choice", "best", "Which parameters of the run.", choices=CHECKPOINTS, commands=("evaluate",)),
    Option("fmt", "choice", "auto", "Corpus format of DATA (auto: docs/ARCHITECTURE.md, 'Input formats').",
           flag="--format", choices=TAGGED_FORMATS, commands=("evaluate",)),
    Option("batch_size", "int", 50, "Sentences per forward pass.", low=1, commands=("evaluate",)),
    Option("decode", "choice", None, "Tag decoding (default: the model's, from its config).", choices=DECODERS,
           optional=True, commands=("evaluate",)),
    Option("progress", "bool", True, "Progress bar (by default on a terminal only, never in a redirected log; given, always).", commands=("evaluate",)),
    _json("evaluate", "Print the metrics as JSON."),
    # export
    Option("out", "folder", None, "Package folder to write (default: export/<MODEL folder name>/): new, empty or an"
           " earlier package, replaced only when complete.", commands=("export",)),
    Option("force", "flag", False, "Also write into a non-empty folder that is not a package (its other files are"
           " kept).", commands=("export",)),
    Option("buckets", "graph_buckets", DEFAULT_BUCKETS, "'dynamic' (one graph, free length; the fastest on CPU,"
           " docs/ARCHITECTURE.md), 'auto' (one graph per training bucket too) or lengths like 10,20,40 (each at"
           f" most {MAX_BUCKET_LENGTH}). The dynamic graph is always written.", high=MAX_BUCKET_LENGTH, unit=" tokens",
           commands=("export",)),
    Option("quantize", "choice", DEFAULT_QUANTIZE, "int8: int8 weights, batch-invariant (a sentence's tags and scores"
           " do not depend on what it is batched with, nor its integer sums on the CPU; the same F1 as float32, 4x"
           " smaller); int8-dynamic: activations quantized with one scale per batch, faster on some CPUs but NOT"
           " batch-invariant, and AVX2 CPUs may saturate its sums; none: float32 weights (exact parity with MXNet).", choices=QUANTIZATIONS, commands=("export",)),
    Option("checkpoint", "choice", "best", "Which parameters of the training folder to export.", choices=CHECKPOINTS,
           commands=("export",)),
    Option("ensemble", "dir", None, "Another training folder with the same vocabularies (the same data): MODEL and"
           " these become one graph whose tag probabilities are the members' geometric mean (repeatable).",
           multiple=True, commands=("export",)),
    Option("max_words", "int", None, "Keep the embeddings of this many most frequent words only (<pad> and <unk>"
           " included); the others read as unknown. Makes the package smaller.", low=3, optional=True,
           commands=("export",)),
    Option("char_graph", "bool", True, "The character CNN as its own graph, whose features the tagger computes once"
           " per word form and caches across batches (package format 2; the same probabilities, bit for bit). With"
           " --no-char-graph every graph computes them (format 1, read by every ner-fast). An ensemble is always one"
           " graph.", commands=("export",)),
    _json("export", "Print the package summary as JSON."),
    # tag
    Option("input_format", "choice", "auto", "conll columns, gmb CSV, tokens (one whitespace-tokenized sentence a"
           " line) or text (raw text, one document a line, tokenized here), jsonl (with --output-dir: a JSON object a"
           " line, the document under --text-field); auto: by the file's extension, else its content, never text or"
           " jsonl (docs/ARCHITECTURE.md, 'Input formats').", choices=(*TAG_FORMATS, JSONL), commands=("tag",)),
    Option("document", "flag", False, "With --input-format text: the whole input is one document.", commands=("tag",)),
    Option("text", "str", None, "Tag this raw text (instead of INPUT), one document.", metavar="TEXT",
           commands=("tag",)),
    Option("output_format", "choice", None, "conll (token TAB tag), jsonl (one JSON object a sentence, or a document"
           " for raw text: Doc.to_dict() with character offsets) or pretty (raw text, entities marked). Default:"
           " pretty for --text, jsonl for other raw text, conll for pre-tokenized input.", choices=OUTPUT_FORMATS,
           optional=True, commands=("tag",)),
    Option("output", "output", None, "File to write (written whole, then renamed into place); default or -: stdout.",
           commands=("tag",)),
    Option("batch_size", "int", None, "Sentences per graph run (pre-tokenized input; default: Tagger.tag_batch's,"
           f" {TAG_BATCH_SIZE}), or per tag_batch call of the raw-text pipeline (default: Tagger.pipe's, {PIPE_BATCH_SIZE}).",
           low=1, optional=True,
           commands=("tag",)),
    _device("tag"),
    Option("threads", "int", None, "onnxruntime intra-op threads per batch (default: onnxruntime's, one per"
           " core; with --output-dir, 1: a Dask worker runs one task a thread).", low=1, optional=True, commands=("tag",),
           threads=True),
    Option("workers", "int", 1, "Batches (raw text: groups of documents) tagged at once, in threads (on few cores,"
           " --workers 2 --threads 1 beats --threads 2).", low=1, commands=("tag",), threads=True),
    Option("output_dir", "folder", None, "Tag INPUT files on a Dask cluster (ner-fast[dask]) into this folder: one"
           " JSON lines part per partition (cat OUT/part-*.jsonl: what jsonl output gives) and manifest.json.",
           commands=("tag",)),
    Option("scheduler", "str", None, "With --output-dir: a running Dask scheduler.", metavar="tcp://HOST:PORT",
           commands=("tag",)),
    Option("scheduler_timeout", "float", SCHEDULER_TIMEOUT, "With --scheduler: seconds it has to answer as a Dask"
           " scheduler.", low=0, low_open=True, high=MAX_TIMEOUT_SECONDS, unit=" seconds", commands=("tag",)),
    Option("local_workers", "int", None, "With --output-dir: start a local Dask cluster of N processes on 127.0.0.1"
           " (default 1).", low=1, optional=True, commands=("tag",)),
    Option("partition_size", "int", PARTITION_SIZE, "With --output-dir: documents per partition (the unit written,"
           " retried and resumed).", low=1, commands=("tag",)),
    Option("text_field", "str", TEXT_FIELD, "The document field of --input-format jsonl.", commands=("tag",)),
    Option("resume", "flag", False, "With --output-dir: tag only the partitions its manifest lacks.",
           commands=("tag",)),
    Option("force", "flag", False, "Replace an existing --output file; with --output-dir: delete its earlier parts and"
           " manifest first.", commands=("tag",)),
    Option("labels", "str", PACKAGE, "Entity labels: the package's, conll (PER ORG LOC MISC), ontonotes (PERSON ORG GPE"
           " NORP DATE ...) or a JSON file mapping the package's labels to new ones or null (dropped).",
           metavar=LABELS_METAVAR, commands=("tag",)),
    # launch
    Option("workers", "int", 2, "Number of workers in the job.", low=1, commands=("launch",)),
    Option("servers", "int", 1, "Number of parameter servers in the job.", low=1, commands=("launch",)),
    Option("role", "choice", "all", "all: the whole job on this machine; otherwise this machine's one process.",
           choices=("all", "scheduler", "server", "worker"), commands=("launch",)),
    Option("scheduler_addr", "str", None, "HOST:PORT of the scheduler (default with --role all: 127.0.0.1 and a free"
           " port).", flag="--scheduler", commands=("launch",)),
    Option("host", "str", "127.0.0.1", "Address this node announces (DMLC_NODE_HOST).", commands=("launch",)),
    Option("interface", "str", "lo", "Network interface to bind (DMLC_INTERFACE).", commands=("launch",)),
    Option("log_dir", "folder", None, "With --role all: one log file per process here.", path_type=str,
           commands=("launch",)),
    Option("timeout", "float", None, "With --role all: stop everything after this many seconds.", low=0, low_open=True,
           optional=True, commands=("launch",)),
    # serve: also the defaults and ranges of `serve.settings.Settings` (`check_setting`)
    # "text", not "str": an empty address would be every interface, not "unset".
    Option("host", "text", "127.0.0.1", "Address to listen on (loopback unless you say otherwise).",
           commands=("serve",)),
    Option("port", "int", 8080, "Port (0: a free one, printed at start).", low=0, high=65535, commands=("serve",)),
    Option("threads", "int", 1, "Worker threads; each tags one batch at a time.", low=1, commands=("serve",),
           threads=True),
    Option("onnx_threads", "int", None, "onnxruntime threads of each worker [default: with batching, the cores shared"
           " among the workers; without, 1].", low=1, optional=True, commands=("serve",), threads=True),
    Option("max_batch_tokens", "int", 4096, "Tokens of concurrent requests coalesced into one tagger batch (0: no"
           " batching, each request alone).", low=0, commands=("serve",)),
    Option("max_wait_ms", "float", 0.0, "How long a batch waits for more requests when a worker is free.", low=0,
           high=MAX_WAIT_MS, commands=("serve",)),
    Option("max_body_bytes", "int", 1 << 20, "Largest request body (bigger: 413).", low=1, commands=("serve",)),
    Option("max_texts", "int", 256, "Most texts or sentences in one request (more: 413).", low=1, commands=("serve",)),
    Option("max_text_chars", "int", 100_000, "Longest text in characters (longer: 413).", low=1, commands=("serve",)),
    Option("piece_tokens", "int", 4096, "A request of more (estimated) tokens goes to the batcher in pieces of about"
           " this many, cut between texts or sentences, so that smaller requests run between them.", low=1,
           commands=("serve",)),
    Option("max_connections", "int", 1000, "Connections served at once; a request on one more is answered 503.",
           low=1, commands=("serve",)),
    _serve_timeout("headers_timeout", 10.0, "Seconds to the end of a request's headers, from the connection's start"
                   " for its first request and from the first byte of each later one (idle time between requests is"
                   " --keep-alive-timeout's); then the connection is closed."),
    _serve_timeout("keep_alive_timeout", 5.0, "Seconds an idle keep-alive connection is kept open."),
    _serve_timeout("body_timeout", 15.0, "Seconds a request body may take to arrive (then 408); also the most an"
                   " answer waits for its client to read any of it (then the connection is cut)."),
    _serve_timeout("graceful_timeout", 30.0, "On SIGTERM, seconds requests in flight may take to finish before they"
                   " are cancelled (bodies still arriving are answered 503 at once)."),
    _device("serve"),
    # tag and serve: one row, `Tagger.load(char_cache=...)`, its default the tagger's own
    Option("char_cache", "int", DEFAULT_CHAR_CACHE, "Word forms whose character features the tagger keeps across"
           " batches, for a package whose character CNN is a graph of its own (format 2, the bundled default;"
           " `ner-fast info` says which): the same tags, each word form's features computed once. 0: none kept (each"
           " batch computes its word forms' features anew). A format-1 package computes them inside each graph and"
           " ignores it.", low=0, metavar="ROWS", commands=("tag", "serve")),
    Option("labels", "str", PACKAGE, "Entity labels of the answers: the package's, conll, ontonotes or a JSON label"
           " map (ner-fast tag --help).", metavar=LABELS_METAVAR, commands=("serve",)),
    Option("log_level", "choice", "warning", "uvicorn's log level.", choices=("critical", "error", "warning", "info",
           "debug"), commands=("serve",)),
    # info
    _json("info", "Print the card as JSON."),
    # `python -m ner_fast.training.bundle` (./dev.sh build-model)
    Option("requantize", "dir", None, "Instead of exporting RUN_DIR: convert this package of an earlier int8 scheme (the"
           " per-batch one, or int8 whose integer sums AVX2 CPUs may saturate) to today's int8 without retraining (the"
           " same int8 weights), re-measure its F1.",
           commands=("bundle",)),
    Option("out", "folder", None, "Package folder to write (replaced only when complete); no default, so that the"
           " installed package is replaced only when named (./dev.sh build-model names src/ner_fast/models/default).",
           required=True, commands=("bundle",)),
    Option("command", "text", None, "The command that built it, recorded in model.json.", required=True,
           commands=("bundle",)),
    Option("checkpoint", "choice", "best", "", choices=CHECKPOINTS, commands=("bundle",)),
    Option("ensemble", "dir", None, "Another run trained on the same data, exported with RUN_DIR as one ensemble"
           " (repeatable).", multiple=True, commands=("bundle",)),
    Option("min_word_count", "int", 1, "Keep the embeddings of words seen at least this often in training only (the"
           " rest read as unknown).", low=1, commands=("bundle",)),
)  # fmt: skip

#: The rows of the training options (prepare and train): what `TrainConfig`, `ModelConfig` and `prepare()` take.
OPTIONS: tuple[Option, ...] = tuple(o for o in TABLE if o.feeds is not None)
BY_NAME: dict[str, Option] = {o.name: o for o in OPTIONS}
#: Every row by (command, name).
ROWS: dict[tuple[str, str], Option] = {(c, o.name): o for o in TABLE for c in o.commands}
assert len(BY_NAME) == len(OPTIONS), "training option names must be unique"
assert len(ROWS) == sum(len(o.commands) for o in TABLE), "a command has one row of each name"
assert all(o.feeds in FEEDS for o in OPTIONS)
assert all(o.needs is None or o.needs in BY_NAME for o in OPTIONS)
assert all(o.unused_at is None or o.unused_at[0] in BY_NAME for o in OPTIONS)


def row(command: str, name: str) -> Option:
    """The row of option `name` (its Python name, e.g. "max_wait_ms") of `command`."""
    return ROWS[(command, name)]


def command_rows(command: str) -> list[Option]:
    """Every row of `command`, in the order its help shows them."""
    return [o for o in TABLE if command in o.commands]


def command_options(command: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A decorator adding every option of `command` (its rows' `Option.click_option`) to a click command."""

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        for opt in reversed(command_rows(command)):
            func = opt.click_option()(func)
        return func

    return decorate


def options(feeds: str | None = None, command: str | None = None) -> list[Option]:
    """The training rows feeding `feeds` and/or offered by `command`, in table order."""
    return [o for o in OPTIONS if (feeds is None or o.feeds == feeds) and (command is None or command in o.commands)]


def default_of(name: str, recipe_name: str = DEFAULT_RECIPE) -> Any:
    """The default of training option `name` (under a recipe)."""
    return BY_NAME[name].default_for(recipe_name)


def recipe_defaults(recipe_name: str) -> dict[str, Any]:
    """Every training option's default under recipe `recipe_name`."""
    if recipe_name not in RECIPE_NAMES:
        raise OptionError("--recipe", f"must be one of {', '.join(RECIPE_NAMES)}, got {recipe_name!r}")
    return {o.name: o.default_for(recipe_name) for o in OPTIONS}


# The settings where a recipe departs from the table's plain defaults (`ner-fast train --recipe`):
# "tuned" (the default) is what measured better on the GMB validation split (docs/TRAINING.md),
# "tutorial" the tutorial's own.
RECIPES: dict[str, dict[str, Any]] = {r: {o.name: o.default_for(r) for o in OPTIONS if o.by_recipe} for r in RECIPE_NAMES}


def check_values(values: Mapping[str, Any]) -> dict[str, Any]:
    """Every entry of `values` (training options by name) checked and normalised by its row (`Option.check`)."""
    return {k: BY_NAME[k].check(v) for k, v in values.items()}


def given_options(values: Mapping[str, Any]) -> dict[str, Any]:
    """The training options among click's `values` that were given on the command line (not None);
    OptionError for one over its `cap`."""
    given = {k: v for k, v in values.items() if k in BY_NAME and v is not None}
    for name, value in given.items():
        BY_NAME[name].check_cap(value)
    return given
