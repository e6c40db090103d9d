"""What a Hugging Face model's files must hold before a run starts, checked while the recipe loads.

A file that is not GGUF, a ``config.json`` transformers cannot read, missing or damaged weights, a
tokenizer that is absent or does not fit the model, a chat recipe on a model without a chat
template, a verdict judge whose marks are not one token each: each is one ``RecipeError`` naming
the key and the file, raised before the run directory exists, instead of a traceback from deep
inside transformers after it does. Only headers and the tokenizer are read here; the weights load
once, when the run builds its policies.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from selftaught.parts.models import HFSettings, local_file
from selftaught.settings import RecipeError
from selftaught.tasks.tokenizer import NO, YES

GGUF_MAGIC = b"GGUF"
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                "pytorch_model.bin.index.json")


def quiet_transformers() -> None:
    """transformers' own progress bars ("Loading weights", "Writing model shards") and advice off:
    a run's progress display is ours alone. peft 0.21 still calls an API transformers 5 deprecates,
    once a LoRA model is made: not the user's to act on."""
    import warnings

    from transformers.utils import logging

    logging.disable_progress_bar()
    logging.set_verbosity_error()
    warnings.filterwarnings("ignore", message="`is_gradient_checkpointing` is deprecated", category=FutureWarning)


@contextmanager
def no_gguf_bar() -> Iterator[None]:
    """Dequantizing a GGUF file draws its own tqdm bar, outside transformers' switch for bars."""
    from tqdm.auto import tqdm
    from transformers import modeling_gguf_pytorch_utils as gguf_utils

    bar = gguf_utils.tqdm
    gguf_utils.tqdm = lambda iterable, **kw: tqdm(iterable, **{**kw, "disable": True})
    try:
        yield
    finally:
        gguf_utils.tqdm = bar


def check_model_files(settings: HFSettings, recipe, where: str = "model") -> None:
    """Everything about the files ``settings`` names that a run would otherwise find out too late."""
    quiet_transformers()
    if settings.gguf:
        key, tokenizer = f"{where}.gguf = {settings.gguf!r}", _gguf_tokenizer(settings.gguf, where)
    else:
        key = f"{where}.path = {settings.path!r}"
        directory = Path(settings.path).expanduser()
        config = _config(directory, key)
        _check_weights(directory, key)
        tokenizer = _tokenizer(directory, key)
        if len(tokenizer) > config.vocab_size:
            raise RecipeError(f"{key}: its tokenizer has {len(tokenizer)} tokens but config.json's vocab_size is "
                              f"{config.vocab_size}: the tokenizer is not this model's")
    if tokenizer.eos_token_id is None:
        raise RecipeError(f"{key}: its tokenizer has no end-of-sequence token, so no reply could end")
    if recipe.task.chat and not tokenizer.chat_template:
        raise RecipeError(f"task.chat = true formats prompts with the model's chat template, but {key} has none "
                          "(a base model: set task.chat = false)")
    for _, part, part_settings in recipe.parts():
        marks = (YES, NO) if getattr(part_settings, "control_marks", False) else ()
        if hasattr(part_settings, "reply_tokens"):
            marks = part_settings.reply_tokens()
        for mark in marks:
            ids = tokenizer(mark, add_special_tokens=False)["input_ids"]
            if len(ids) != 1:
                raise RecipeError(f"{part}.type = '{part_settings.type}' reads the model's verdict as one "
                                  f"token {mark!r}, which {key}'s tokenizer writes as {len(ids)} tokens")


def _config(directory: Path, key: str):
    from transformers import AutoConfig
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING_NAMES
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    file = directory / "config.json"
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise RecipeError(f"{key}: {file} is not valid JSON ({e})") from None
    model_type = data.get("model_type") if isinstance(data, dict) else None
    if not model_type:
        raise RecipeError(f"{key}: {file} has no model_type, so transformers cannot tell which model it is")
    if model_type not in CONFIG_MAPPING_NAMES:
        import transformers

        raise RecipeError(f"{key}: {file} names model_type {model_type!r}, which transformers "
                          f"{transformers.__version__} does not know (a newer transformers may: pip install -U "
                          "transformers)")
    if model_type not in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES:
        raise RecipeError(f"{key}: a {model_type!r} model is not a causal language model (transformers has no "
                          "AutoModelForCausalLM for it)")
    try:
        return AutoConfig.from_pretrained(str(directory), local_files_only=True)
    except Exception as e:  # noqa: BLE001  a config transformers rejects, in its own words
        raise RecipeError(f"{key}: transformers cannot read {file}: {_first_line(e)}") from None


def _check_weights(directory: Path, key: str) -> None:
    from safetensors import safe_open

    present = [directory / name for name in WEIGHT_FILES if (directory / name).is_file()]
    if not present:
        raise RecipeError(f"{key}: no weights in {directory} (expected {' or '.join(WEIGHT_FILES[:2])})")
    index = present[0].name.endswith(".index.json")
    shards = _shards(present[0], key) if index else [present[0]]
    for shard in shards:
        if shard.suffix != ".safetensors":
            continue
        if not shard.is_file():
            raise RecipeError(f"{key}: {present[0].name} lists {shard.name}, which is not in {directory}")
        try:  # the header names every tensor's byte range: a cut-off file fails here, not mid-load
            with safe_open(str(shard), framework="pt") as f:
                f.keys()
        except Exception as e:  # noqa: BLE001  safetensors raises its own error types
            raise RecipeError(f"{key}: {shard} cannot be read as safetensors ({_first_line(e)}); the file may "
                              "be cut off: copy it again") from None


def _shards(index: Path, key: str) -> list[Path]:
    try:
        names = set(json.loads(index.read_text())["weight_map"].values())
    except (ValueError, KeyError, TypeError) as e:
        raise RecipeError(f"{key}: {index} is not a weights index ({e})") from None
    return [index.parent / n for n in sorted(names)]


def _tokenizer(directory: Path, key: str):
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(str(directory), local_files_only=True)
    except Exception as e:  # noqa: BLE001  missing files surface as OSError, ValueError or TypeError
        raise RecipeError(f"{key}: no tokenizer transformers can load in {directory} (tokenizer.json and "
                          f"tokenizer_config.json): {_first_line(e)}") from None


def _gguf_tokenizer(value: str, where: str):
    """The GGUF file's tokenizer: from its converted copy where one is cached, else read from the
    file itself, which also proves transformers can read the file's architecture."""
    from transformers import AutoTokenizer

    from selftaught.models.hf_policy import converted_copy

    key = f"{where}.gguf = {value!r}"
    file = local_file(value)
    if file is None:  # checked already by HFSettings.check; a file gone since
        raise RecipeError(f"{key}: no such file")
    with file.open("rb") as f:
        magic = f.read(len(GGUF_MAGIC))
    if magic != GGUF_MAGIC:
        raise RecipeError(f"{key}: {file} is not a GGUF file (it does not start with {GGUF_MAGIC!r}); name a .gguf "
                          f"model, or a model directory as {where}.path")
    if importlib.util.find_spec("gguf") is None:
        raise RecipeError(f"{key}: reading GGUF files needs the gguf package: pip install 'selftaught[hf]'")
    cached = converted_copy(file)
    if (cached / "config.json").is_file():
        return _tokenizer(cached, key)
    try:
        return AutoTokenizer.from_pretrained(str(file.parent), gguf_file=file.name, local_files_only=True)
    except Exception as e:  # noqa: BLE001  the gguf reader and transformers' converters raise many types
        raise RecipeError(f"{key}: {file} cannot be read by transformers' GGUF loader ({_first_line(e)}); the "
                          "file may be cut off, or of an architecture transformers cannot convert") from None


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return f"{type(e).__name__}: {text.splitlines()[0]}" if text else type(e).__name__
