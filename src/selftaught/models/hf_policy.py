"""A Hugging Face causal language model behind the ``Policy`` protocol.

Loaded with ``AutoModelForCausalLM`` / ``AutoTokenizer`` from local files only: a model directory
(config, safetensors, tokenizer) or a ``.gguf`` file, which transformers dequantizes with the
``gguf`` package. Dequantizing takes half a minute for a 135M model on two cores, so the converted
model is cached (``SELFTAUGHT_CACHE``, default ``~/.cache/selftaught``) and later loads take
seconds. Generation is transformers' own ``generate`` (left-padded batches), seeded per batch from
the run's generator so that a run reproduces and resumes exactly.
"""

from __future__ import annotations

import copy
import hashlib
import os
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
import torch.nn.functional as F

from selftaught.conversation import messages
from selftaught.models.hf_files import no_gguf_bar, quiet_transformers
from selftaught.models.optim import make_optimizer, optimizer_step
from selftaught.models.precision import resolve as resolve_precision
from selftaught.parts.models import local_file
from selftaught.policy import Completion
from selftaught.settings import RecipeError


class ModelLoadError(RecipeError):
    """A model that cannot be loaded from local files; the message names the path."""


def cache_dir() -> Path:
    return Path(os.environ.get("SELFTAUGHT_CACHE", Path.home() / ".cache" / "selftaught"))


def converted_copy(file: Path) -> Path:
    """Where the dequantized model of a .gguf file is cached: a new file (or a new copy of it) gets
    a new place."""
    stat = file.stat()
    key = hashlib.sha256(f"{file.resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()[:16]
    return cache_dir() / "gguf" / f"{file.stem}-{key}"


def load_pretrained(path: str = "", gguf: str = "", dtype: str = "float32"):
    """(model, tokenizer) from a local model directory or a .gguf file; never from the hub."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    quiet_transformers()
    torch_dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16}[dtype]
    if gguf:
        file = local_file(gguf)
        if file is None:
            raise ModelLoadError(f"model.gguf = {gguf!r}: no such file, nor in an installed package")
        cached = converted_copy(file)
        if not (cached / "config.json").is_file():
            with no_gguf_bar():
                model = AutoModelForCausalLM.from_pretrained(str(file.parent), gguf_file=file.name,
                                                             local_files_only=True, dtype=torch.float32)
            tokenizer = AutoTokenizer.from_pretrained(str(file.parent), gguf_file=file.name, local_files_only=True)
            # dequantized, the weights are plain fp32: drop the marks that make transformers refuse to save
            model.hf_quantizer = None
            if hasattr(model.config, "quantization_config"):
                del model.config.quantization_config
            tmp = cached.with_name(cached.name + f".tmp-{os.getpid()}")
            model.save_pretrained(tmp)
            tokenizer.save_pretrained(tmp)
            try:
                tmp.replace(cached)  # whole or not at all: a killed conversion leaves only a .tmp
            except OSError:  # another process converted the same file first: its copy serves
                if not (cached / "config.json").is_file():
                    raise
                shutil.rmtree(tmp, ignore_errors=True)
        directory = cached
    else:
        directory = Path(path).expanduser()
        if not (directory / "config.json").is_file():
            raise ModelLoadError(f"model.path = {path!r}: not a model directory (no config.json there)")
    model = AutoModelForCausalLM.from_pretrained(str(directory), local_files_only=True, dtype=torch_dtype)
    tokenizer = AutoTokenizer.from_pretrained(str(directory), local_files_only=True)
    return model, tokenizer


class HFPolicy:
    """``model`` (a transformers causal LM) and its ``tokenizer``; ``optimizer`` None: never trains.
    ``chat``: prompts go through the tokenizer's chat template as one user turn (a ``Conversation``
    as its turns); ``template``: else each prompt is written into this text at ``{prompt}`` (a base
    model's plain or few-shot format; a ``Conversation`` as its one string, as before). ``stop``: a reply
    also ends at the first of these strings (kept in it, as EOS is kept in what is trained).
    ``fast``: sample with our KV-cache decoder (``models.hf_decoder``) where the model is of the
    Llama family, else with transformers' ``generate``. ``precision``: ``bf16-mixed`` keeps
    ``model`` as the fp32 masters the optimizer steps and saves, and runs every forward, backward
    and sample on ``compute``, a bf16 copy refreshed after each step (``models.precision``)."""

    def __init__(self, model, tokenizer, optimizer: torch.optim.Optimizer | None = None, chat: bool = False,
                 stop: Sequence[str] = (), fast: bool = True, precision: str = "fp32", template: str = ""):
        self.model, self.tokenizer, self.optimizer, self.chat = model.eval(), tokenizer, optimizer, chat
        self.template = template
        self.stop, self.fast, self.precision = tuple(stop), fast, precision
        self.compute = bf16_copy(model) if precision == "bf16-mixed" else model
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token  # padding is masked out: any id does
        self.eos = tokenizer.eos_token_id
        self._weights = 0  # bumped whenever the weights change, so the decoder's copy is refreshed
        self._decoder: tuple[int, object] | None = None

    @property
    def max_len(self) -> int:
        return int(getattr(self.model.config, "max_position_embeddings", 2048))

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def num_params(self) -> int:
        return sum(p.numel() for p in self.model.parameters())

    def prompt_ids(self, prompt: str) -> list[int]:
        if self.chat:
            # one user turn, or a ``Conversation``'s turns (a revision: problem, attempt, request to revise)
            return list(self.tokenizer.apply_chat_template(messages(prompt), add_generation_prompt=True,
                                                           tokenize=True, return_dict=False))
        return self.tokenizer(self.template.replace("{prompt}", prompt) if self.template else prompt)["input_ids"]

    def text_ids(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    # ---- decoding ------------------------------------------------------------------------------

    def decoder(self):
        """Our decoder holding the current weights, or None where it cannot stand in for the model."""
        from selftaught.models.hf_decoder import copy_weights, from_hf, why_unsupported

        if not self.fast or why_unsupported(self.compute):
            return None
        if self._decoder is None:
            self._decoder = (self._weights, from_hf(self.compute))
        elif self._decoder[0] != self._weights:
            copy_weights(self.compute, self._decoder[1])
            self._decoder = (self._weights, self._decoder[1])
        return self._decoder[1]

    @torch.inference_mode()
    def generate(self, prompts: Sequence[str], limits: Sequence[int | None], *, temperature: float = 0.0,
                 top_k: int = 0, top_p: float = 1.0, batch_size: int = 512,
                 generator: torch.Generator | None = None, on_batch: Callable[[int], None] | None = None,
                 stop: Sequence[str] = (), prefixes: Sequence[str] | None = None) -> list[Completion]:
        """Length-sorted, left-padded batches; a row stops at EOS, a stop string (the recipe's
        ``model.stop`` and ``stop``) or its limit, while decoding. Through our decoder where it
        serves the model (``decoder``; prompts shared), else through ``model.generate``; either way
        the run's ``generator`` is the only randomness."""
        stops = tuple(dict.fromkeys(self.stop + tuple(stop)))
        encoded = [self.prompt_ids(p) for p in prompts]
        if prefixes is not None:  # the reply's own first words, after the chat turn's opening
            encoded = [e + (self.text_ids(x) if x else []) for e, x in zip(encoded, prefixes, strict=True)]
        order = sorted(range(len(prompts)), key=lambda i: len(encoded[i]))
        out: list[Completion] = [Completion("", [], [])] * len(prompts)
        for start in range(0, len(order), batch_size):
            idx = order[start:start + batch_size]
            room = [max(1, min(self.max_len - len(encoded[i]), limits[i] or self.max_len)) for i in idx]
            batch = [encoded[i] for i in idx]
            done = self._fast(batch, room, temperature, top_k, top_p, generator, stops)
            if done is None:
                done = self._transformers(batch, room, temperature, top_k, top_p, generator, stops)
            for i, (tokens, logps) in zip(idx, done):
                n = self._through_stop(tokens, len(tokens), stops)
                out[i] = Completion(self.tokenizer.decode(tokens[:n], skip_special_tokens=True), tokens[:n], logps[:n])
            if on_batch is not None:
                on_batch(len(idx))
        return out

    def _fast(self, encoded: list[list[int]], room: list[int], temperature: float, top_k: int, top_p: float,
              generator: torch.Generator | None, stops: tuple[str, ...]
              ) -> list[tuple[list[int], list[float]]] | None:
        """Our decoder's replies (tokens before EOS, log-probs), or None where it does not serve:
        the model is not of the Llama family, or the sequence would pass its rope table or window."""
        from selftaught.models.generate import generate
        from selftaught.models.hf_decoder import window

        decoder = self.decoder()
        longest = max(map(len, encoded)) + max(room)
        if decoder is None or longest > decoder.cfg.max_len or longest > (window(self.compute) or longest):
            return None
        ids, logps = generate(decoder, encoded, room, temperature=temperature, top_k=top_k or None, top_p=top_p,
                              generator=generator, with_logps=True, eos=[self.eos], cut_at=[],
                              share_prompts=True, draw="inverse-cdf", stop=self._stop_at(stops))
        return list(zip(ids, logps))

    def _stop_at(self, stops: tuple[str, ...]):
        """Our decoder's ``StopAt`` for ``stops``, made once per set of strings (it reads the
        whole vocabulary)."""
        from selftaught.models.generate import stop_at

        if not stops:
            return None
        made = self.__dict__.setdefault("_stops", {})
        if stops not in made:
            made[stops] = stop_at(stops, lambda ids: self.tokenizer.decode(ids, skip_special_tokens=True),
                                  len(self.tokenizer))
        return made[stops]

    def _transformers(self, encoded: list[list[int]], room: list[int], temperature: float, top_k: int,
                      top_p: float, generator: torch.Generator | None, stops: tuple[str, ...]
                      ) -> list[tuple[list[int], list[float]]]:
        """``model.generate`` on the left-padded batch, sampling from torch's generator seeded from
        ``generator`` (and put back after)."""
        width = max(map(len, encoded))
        ids = torch.full((len(encoded), width), self.tokenizer.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(encoded), width), dtype=torch.long)
        for row, prompt in enumerate(encoded):
            ids[row, width - len(prompt):] = torch.as_tensor(prompt)
            mask[row, width - len(prompt):] = 1
        seed = int(torch.randint(0, 2**62, (1,), generator=generator)) if generator is not None else None
        with torch.random.fork_rng(devices=[]):
            if seed is not None:
                torch.manual_seed(seed)
            done = self.compute.generate(
                input_ids=ids.to(self.device), attention_mask=mask.to(self.device), max_new_tokens=max(room),
                do_sample=temperature > 0, temperature=temperature if temperature > 0 else None,
                top_k=top_k or None, top_p=top_p if top_p < 1.0 else None, return_dict_in_generate=True,
                output_scores=True, pad_token_id=self.tokenizer.pad_token_id, eos_token_id=self.eos,
                **({"stop_strings": list(stops), "tokenizer": self.tokenizer} if stops else {}))
        new = done.sequences[:, width:]
        # the scores are the processed logits each token was drawn from (temperature, top-k)
        picked = torch.stack([F.log_softmax(s.float(), -1).gather(-1, new[:, k, None]).squeeze(-1)
                              for k, s in enumerate(done.scores)], 1).tolist()
        out = []
        for row in range(len(encoded)):
            tokens = new[row].tolist()[: room[row]]
            n = next((k for k, t in enumerate(tokens) if t == self.eos), len(tokens))
            out.append((tokens[:n], picked[row][:n]))
        return out

    def _through_stop(self, tokens: list[int], n: int, stops: tuple[str, ...]) -> int:
        """How many of the first ``n`` tokens a reply keeps: through the token that completes its
        first stop string (transformers' ``generate`` pads a finished row after it), else all ``n``."""
        if not stops or not any(s in self.tokenizer.decode(tokens[:n]) for s in stops):
            return n
        lo, hi = 1, n  # the shortest prefix holding a stop string: containing one only grows with length
        while lo < hi:
            mid = (lo + hi) // 2
            if any(s in self.tokenizer.decode(tokens[:mid]) for s in stops):
                hi = mid
            else:
                lo = mid + 1
        return lo

    # ---- scoring -------------------------------------------------------------------------------

    def _batch(self, prompts: Sequence[str], completions: Sequence[str]):
        """Right-padded prompt + completion + EOS, and each completion token's position."""
        rows = []
        for p, c in zip(prompts, completions, strict=True):
            prompt, tail = self.prompt_ids(p), self.text_ids(c) + [self.eos]
            rows.append((prompt + tail, len(prompt), len(tail)))
        width = max(len(r[0]) for r in rows)
        ids = torch.full((len(rows), width), self.tokenizer.pad_token_id, dtype=torch.long)
        attention = torch.zeros((len(rows), width), dtype=torch.long)
        for k, (seq, _, _) in enumerate(rows):
            ids[k, : len(seq)] = torch.as_tensor(seq)
            attention[k, : len(seq)] = 1
        return ids.to(self.device), attention.to(self.device), rows

    def token_logps(self, prompts: Sequence[str], completions: Sequence[str], temperature: float = 1.0
                    ) -> tuple[torch.Tensor, torch.Tensor]:
        ids, attention, rows = self._batch(prompts, completions)
        longest = max(n for _, _, n in rows)
        parts = similar_starts([start for _, start, _ in rows], longest)
        if len(parts) == 1:
            return self._scored(ids, attention, rows, temperature)
        # prompts of very different lengths (first turns beside revisions' conversations): a forward
        # pass a part, so that the logits kept span its own completions, not every prompt's end between
        done = []
        for part in parts:
            width = max(len(rows[i][0]) for i in part)
            at = torch.as_tensor(part, device=self.device)
            logps, _ = self._scored(ids[at, :width], attention[at, :width], [rows[i] for i in part], temperature)
            done.append(F.pad(logps, (0, longest - logps.shape[1])))
        back = torch.as_tensor([i for part in parts for i in part], device=self.device).argsort()
        mask = torch.arange(longest, device=self.device)[None] < torch.as_tensor(
            [n for _, _, n in rows], device=self.device)[:, None]
        return torch.cat(done)[back], mask

    def _scored(self, ids: torch.Tensor, attention: torch.Tensor, rows: list, temperature: float
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """``token_logps`` of one batch as ``_batch`` makes it."""
        # logits only where some row's completion is predicted (the prompts' are most of a batch's
        # positions, and the head is a fifth of a small model's work), then one gather for all rows
        lo = min(start for _, start, _ in rows) - 1
        hi = max(start - 1 + n for _, start, n in rows)
        logits = self.compute(input_ids=ids, attention_mask=attention,
                              logits_to_keep=torch.arange(lo, hi, device=self.device)).logits
        logp = F.log_softmax(logits.float() / temperature if temperature != 1.0 else logits.float(), dim=-1)
        longest = max(n for _, _, n in rows)
        steps = torch.arange(longest, device=self.device)
        starts = torch.as_tensor([start for _, start, _ in rows], device=self.device)
        mask = steps[None] < torch.as_tensor([n for _, _, n in rows], device=self.device)[:, None]
        # logits at t predict token t + 1: completion token j of a row is predicted at start - 1 + j
        at = (starts[:, None] - 1 + steps[None]).clamp(max=hi - 1)  # past a row's end: any kept position, masked
        targets = ids.gather(1, at + 1)
        picked = logp[torch.arange(len(rows), device=self.device)[:, None], at - lo, targets]
        return picked.masked_fill(~mask, 0.0), mask

    @torch.no_grad()
    def reply_features(self, prompts: Sequence[str], completions: Sequence[str]) -> torch.Tensor:
        ids, attention, rows = self._batch(prompts, completions)
        # the base model alone (LoRA's adapters in it): its last hidden state, after the final norm, with
        # neither the head's logits nor every layer's states held
        states = self.compute.get_decoder()(input_ids=ids, attention_mask=attention).last_hidden_state.float()
        at = torch.arange(ids.shape[1], device=self.device)[None]
        starts = torch.as_tensor([start for _, start, _ in rows], device=self.device)[:, None]
        reply = (at >= starts) & (at < starts + torch.as_tensor([n for _, _, n in rows], device=self.device)[:, None])
        return (states * reply[..., None]).sum(1) / reply.sum(1, keepdim=True)

    def log_odds(self, texts: Sequence[str], yes: str, no: str, prompts: bool = False) -> torch.Tensor:
        y, n = self._single_token(yes), self._single_token(no)
        encoded = [self.prompt_ids(t) if prompts else self.text_ids(t) for t in texts]
        ids = torch.full((len(encoded), max(len(e) for e in encoded)), self.tokenizer.pad_token_id, dtype=torch.long)
        attention = torch.zeros_like(ids)
        for k, e in enumerate(encoded):
            ids[k, : len(e)] = torch.as_tensor(e)
            attention[k, : len(e)] = 1
        logits = self.compute(input_ids=ids.to(self.device), attention_mask=attention.to(self.device)).logits
        last = logits[torch.arange(len(encoded)), torch.as_tensor([len(e) - 1 for e in encoded])]
        return (last[:, y] - last[:, n]).float()

    def _single_token(self, text: str) -> int:
        ids = self.text_ids(text)
        if len(ids) != 1:
            raise ValueError(f"{text!r} is {len(ids)} tokens for this tokenizer; a verdict needs one token each")
        return ids[0]

    # ---- training ------------------------------------------------------------------------------

    def answer_loss_backward(self, prompts: Sequence[str], answers: Sequence[str]) -> float:
        logps, mask = self.token_logps(prompts, answers)
        loss = -(logps * mask).sum() / mask.sum()
        loss.backward()
        return loss.item()

    def step(self, lr: float, backward: Callable[[], float]) -> float:
        self._weights += 1
        work = None if self.compute is self.model else self.compute
        return optimizer_step(self.model, self.optimizer, lr, backward, work)

    def train(self) -> None:
        self.model.train()
        self.compute.train()

    def eval(self) -> None:
        self.model.eval()
        self.compute.eval()

    def frozen_copy(self) -> HFPolicy:
        """A copy that never trains (a reference model, a Ray worker's replica): of the working copy,
        so that it computes as this policy does, in half the bytes under bf16-mixed."""
        return HFPolicy(copy.deepcopy(self.compute).eval(), self.tokenizer, None, self.chat, self.stop, self.fast,
                        template=self.template)

    def _refresh(self) -> None:
        """The working copy takes the masters' values (after a load)."""
        if self.compute is not self.model:
            with torch.no_grad():
                for m, w in zip(self.model.parameters(), self.compute.parameters(), strict=True):
                    w.copy_(m)

    # ---- persistence ---------------------------------------------------------------------------

    def save(self, directory: Path) -> None:
        """``save_pretrained`` (safetensors, config, tokenizer: the round's model loads back in plain
        transformers; with LoRA, the adapters, which peft loads onto the base model) and the
        optimizer's state."""
        directory = Path(directory)
        self.model.save_pretrained(directory)
        self.tokenizer.save_pretrained(directory)
        if self.optimizer is not None:
            torch.save(self.optimizer.state_dict(), directory / "optimizer.pt")

    def load(self, directory: Path) -> None:
        from safetensors.torch import load_file

        directory = Path(directory)
        self._weights += 1
        if _is_lora(self.model):
            from peft import set_peft_model_state_dict

            set_peft_model_state_dict(self.model, load_file(str(directory / "adapter_model.safetensors"),
                                                            device=str(self.device)))
            if self.optimizer is not None:
                self.optimizer.load_state_dict(torch.load(directory / "optimizer.pt", weights_only=True))
            self._refresh()
            return
        state = load_file(str(directory / "model.safetensors"), device=str(self.device))
        missing, unexpected = self.model.load_state_dict(state, strict=False)
        tied = set(getattr(self.model, "_tied_weights_keys", None) or [])
        if unexpected or set(missing) - tied:
            raise ValueError(f"{directory}: weights do not fit the model (missing {missing}, unexpected {unexpected})")
        self.model.tie_weights()
        if self.optimizer is not None:
            self.optimizer.load_state_dict(torch.load(directory / "optimizer.pt", weights_only=True))
        self._refresh()


def similar_starts(starts: Sequence[int], longest: int) -> list[list[int]]:
    """Rows in parts by where their completions start: sorted, a new part wherever a row starts more
    than ``longest`` (the longest completion) after its part's first, so that the positions a part
    keeps logits at span at most twice its completions. Prompts of one kind make one part."""
    order = sorted(range(len(starts)), key=starts.__getitem__)
    parts = [[order[0]]]
    for i in order[1:]:
        if starts[i] - starts[parts[-1][0]] > longest:
            parts.append([i])
        else:
            parts[-1].append(i)
    return parts


def bf16_copy(model):
    """``model``'s bf16 working copy. On a CPU it attends with plain matmuls (transformers' eager
    attention): for a round's short sequences its backward is 1.3x faster than the CPU
    flash-attention kernel's in bf16 (SmolLM2, LOG.md)."""
    work = copy.deepcopy(model).to(torch.bfloat16)
    if next(model.parameters()).device.type == "cpu":
        work.set_attn_implementation("eager")
    return work


def with_lora(model, rank: int):
    """``model`` with LoRA adapters of ``rank`` on every linear layer; only they train."""
    from peft import LoraConfig, get_peft_model

    return get_peft_model(model, LoraConfig(r=rank, lora_alpha=2 * rank, lora_dropout=0.0,
                                            target_modules="all-linear"))


def _is_lora(model) -> bool:
    return hasattr(model, "peft_config")


def hf_policies(settings, context) -> list[HFPolicy]:
    """The ``[model]`` part for ``type = "hf"``: ``settings.members`` copies of the pretrained model
    (they differ only by what each learns), each with its AdamW."""
    model, tokenizer = load_pretrained(settings.path, settings.gguf, settings.dtype)
    model = model.to(settings.device)
    if settings.gradient_checkpointing:
        model.gradient_checkpointing_enable()
        model.enable_input_require_grads()  # so that checkpointed blocks see a graph even with frozen embeddings
    if settings.lora_rank:
        model = with_lora(model, settings.lora_rank)
    # loading leaves torch's global generator in a state of its own; a run's starts from its seed
    torch.manual_seed(context.recipe.run.seed)
    precision, _ = resolve_precision(settings.precision, settings.device, "hf", settings.dtype)
    learner = context.recipe.learner
    policies = []
    for i in range(settings.members):
        member = model if i == 0 else copy.deepcopy(model)
        optimizer = make_optimizer(member, learner.lr, learner.weight_decay, fused=True)
        policies.append(HFPolicy(member, tokenizer, optimizer, chat=context.recipe.task.chat, stop=settings.stop,
                                 fast=settings.fast_sampling, precision=precision,
                                 template=context.recipe.task.prompt_template))
    return policies
