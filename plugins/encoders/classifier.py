from __future__ import annotations

from typing import Literal

import numpy as np

from clustergrid import Encoder
from clustergrid.memory import FLOAT32, image_shape
from clustergrid.plugins.encoders.pretrained import EXAMPLE_ID, Pooling
from clustergrid.plugins.support import imagenet
from clustergrid.plugins.support.devices import on_cpu, select_device
from clustergrid.plugins.support.training import (
    ADAM_COPIES,
    INDEX,
    Trained,
    allocations,
    embedding_bytes,
    measured,
    parameter_bytes,
)

#: int64 arrays of one value per item fitting holds: the labels, the labelled items, the
#: targets, the split, sorted, and the shuffled order
LABEL_COPIES = 6


class Classifier(Encoder):
    """Supervised classifier (small CNN or pretrained backbone), embedding = penultimate layer.

    The DeepLense recipe: train a network to predict the dataset's labels on a
    stratified training split, report held-out scores, then use the features feeding
    the final linear layer as the embedding of every image. Needs a labelled dataset
    (items labelled ``-1`` are left out of training).

    Parameters:

    - ``backbone``: ``cnn`` (a small CNN: three conv-BN-ReLU-pool blocks of ``width``,
      ``2 width``, ``4 width`` channels, global average pooling, a hidden layer of
      ``embedding_dim`` units = the embedding, then the linear head; any channel count
      and image size) or ``pretrained`` (``model`` loaded and preprocessed exactly as the
      ``pretrained`` encoder does, with ``pooling``, plus a linear head; the embedding is
      the backbone's pooled features).
    - ``model``, ``pooling``: the ``pretrained`` encoder's parameters (backbone
      ``pretrained`` only; ``model`` is required then): a built-in ImageNet CNN
      (``efficientnet-lite0``), a model folder or a hub id.
    - ``freeze``: with a pretrained backbone, train the head only (a linear probe)
      instead of fine-tuning everything.
    - ``batch_norm``: fine-tuning a pretrained backbone, ``frozen`` keeps the running
      statistics its BatchNorm layers learnt in pretraining (those layers stay in eval
      mode; their scale and shift still train), ``train`` re-estimates them from the
      training batches, as plain train mode does. The CNN and models without BatchNorm
      (ViT, DINOv2, CLIP) are unaffected.
    - ``rescale``: per-image min-max to [0, 1] of the input (both backbones).
    - ``width``, ``embedding_dim``: size of the CNN.
    - ``epochs``, ``lr`` (Adam: the CNN, or the linear head on a pretrained backbone),
      ``backbone_lr`` (a fine-tuned backbone's own weights, ten times slower by default:
      its features are adjusted while the new head learns, not overwritten),
      ``weight_decay``, ``batch_size``: training; images are read in slices.
      Fine-tuning EfficientNet-Lite0 on 240 simulated galaxies in batches of 16 for 4
      epochs (``tests/benchmarks/bench_finetune.py``), held-out AUC over two seeds: 1.00
      and 1.00 with these defaults; 0.99 and 0.45 with one lr of 1e-3 for every weight;
      0.90 and 0.88 with one lr of 1e-3 and the statistics re-estimated (before version
      1); the CNN from scratch 0.81 and 0.87 in the same 4 epochs.
    - ``val_fraction``: share of the labelled items held out (stratified) for the
      scores; 0 trains on everything and logs no held-out scores.
    - ``random_state``: seeds the split, the initialisation and the batch order.
    - ``device``: ``auto`` (CUDA, then MPS, then CPU), ``cpu``, ``cuda``...

    Logged in ``metrics_``: ``train_loss`` and ``val_loss`` per epoch, and on the
    held-out split ``val_accuracy``, ``val_auc`` (macro one-vs-rest ROC AUC) and
    ``val_auc.<class index>``.
    """

    name = "classifier"
    #: 1: a fine-tuned backbone keeps its BatchNorm statistics (``batch_norm``) and
    #: learns at ``backbone_lr``
    version = "1"
    needs_labels = True

    def __init__(
        self,
        backbone: Literal["cnn", "pretrained"] = "cnn",
        model: str | None = None,
        pooling: Pooling = "cls",
        freeze: bool = False,
        batch_norm: Literal["frozen", "train"] = "frozen",
        rescale: bool = True,
        width: int = 16,
        embedding_dim: int = 64,
        epochs: int = 10,
        lr: float = 1e-3,
        backbone_lr: float = 1e-4,
        weight_decay: float = 0.0,
        batch_size: int = 64,
        val_fraction: float = 0.2,
        random_state: int | None = None,
        device: str = "auto",
    ):
        self.backbone = backbone
        self.model = model
        self.pooling = pooling
        self.freeze = freeze
        self.batch_norm = batch_norm
        self.rescale = rescale
        self.width = width
        self.embedding_dim = embedding_dim
        self.epochs = epochs
        self.lr = lr
        self.backbone_lr = backbone_lr
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.val_fraction = val_fraction
        self.random_state = random_state
        self.device = device

    # -- network -------------------------------------------------------------------

    def _build(self, n_channels: int, n_classes: int, device):
        """The network: ``embed(images) -> features`` and ``head(features) -> logits``."""
        import torch
        from torch import nn

        rescale = self.rescale

        if self.backbone == "cnn":
            w = self.width

            def block(cin: int, cout: int) -> list[nn.Module]:
                return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout),
                        nn.ReLU(), nn.MaxPool2d(2, ceil_mode=True)]

            class Net(nn.Module):
                def __init__(self, dim: int):
                    super().__init__()
                    self.trunk = nn.Sequential(
                        *block(n_channels, w), *block(w, 2 * w), *block(2 * w, 4 * w),
                        nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                        nn.Linear(4 * w, dim), nn.ReLU(),
                    )
                    self.dropout = nn.Dropout(0.2)
                    self.head = nn.Linear(dim, n_classes)

                def embed(self, batch: np.ndarray):
                    # A float32 tensor as it is: a memory estimate passes a meta one.
                    x = (batch if isinstance(batch, torch.Tensor)
                         else torch.as_tensor(np.array(batch, dtype=np.float32), device=device))
                    if rescale:
                        low = x.amin(dim=(1, 2, 3), keepdim=True)
                        span = x.amax(dim=(1, 2, 3), keepdim=True) - low
                        x = (x - low) / torch.where(span > 0, span, torch.ones_like(span))
                    return self.trunk(x)

                def forward(self, batch: np.ndarray):
                    return self.head(self.dropout(self.embed(batch)))

            return Net(self.embedding_dim).to(device)

        from clustergrid.plugins.encoders.pretrained import load_backbone

        loaded = load_backbone(self.model, device)
        if not loaded.uses_pooling and self.pooling != "cls":
            raise ValueError(
                f"classifier: pooling '{self.pooling}' applies to DINOv2 and ViT only, "
                f"not to a {loaded.model_type} model (use pooling: cls)"
            )
        pooling, freeze = self.pooling, self.freeze
        frozen_norm = self.batch_norm == "frozen"
        norms = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)

        class Tuned(nn.Module):
            def __init__(self):
                super().__init__()
                self.backbone = loaded.model
                self.head = nn.Linear(loaded.dim(pooling), n_classes)
                if freeze:
                    self.backbone.requires_grad_(False)

            def train(self, mode: bool = True):
                super().train(mode)
                if freeze:
                    # A frozen backbone keeps its dropout and norm statistics fixed.
                    self.backbone.eval()
                elif frozen_norm:
                    # The statistics of a batch of a few images are noisy, and the
                    # running averages that evaluation then uses match neither them
                    # nor the pretrained ones (momentum 0.01 for EfficientNet-Lite).
                    for module in self.backbone.modules():
                        if isinstance(module, norms):
                            module.eval()
                return self

            def embed(self, batch: np.ndarray):
                pixels = loaded.prepare(batch, rescale, device)
                return loaded.features(pixels, pooling)

            def forward(self, batch: np.ndarray):
                return self.head(self.embed(batch))

        return Tuned().to(device)

    # -- memory --------------------------------------------------------------------

    def memory_estimate(self, n: int, d: int) -> int:
        """Bytes of training on ``n`` labelled images of ``d`` values (shaped as
        ``memory.image_shape`` guesses) and embedding them: the network (the CNN, or the
        backbone built from its config as ``pretrained`` sizes it) and one training step
        of cross-entropy on a batch, on the meta device (``measure``). Counted on the
        CPU: the weights that train ``ADAM_COPIES`` times and the frozen ones once, the
        step's activations (``Allocations.training``; through a frozen backbone
        ``Allocations.inference``: nothing is kept for backward), two float32 copies of
        the batch read (the rows taken from the stack, their float32 copy), the
        embeddings (``embedding_bytes``, twice: the batches' and their concatenation) and
        the labels' arrays (``LABEL_COPIES`` int64 per item). On an accelerator the
        network and its activations take its memory: the worker holds the weights once
        (a backbone is loaded there first), the batch, the embeddings and the labels."""
        shape = image_shape(d)
        batch = max(2, min(int(n), int(self.batch_size)))
        trained, frozen = self.measure(shape, batch)
        host = (trained.weights + frozen + 2 * batch * d * FLOAT32
                + 2 * embedding_bytes(n, trained.dim) + LABEL_COPIES * n * INDEX)
        if on_cpu(self.device):
            kept = trained.step.inference() if self._frozen() else trained.step.training()
            host += (ADAM_COPIES - 1) * trained.weights + kept
        return host

    def measure(self, shape: tuple[int, int, int], batch: int) -> tuple[Trained, int]:
        """The network for images of ``shape`` (and two classes: the head is small) built
        on the meta device, and one step of cross-entropy on a batch of ``batch`` of them,
        counted by ``training.allocations``: its trained weights, the step, the
        embedding's width, and the bytes of its frozen weights."""
        import torch

        def measure() -> tuple[Trained, int]:
            meta = torch.device("meta")
            with meta:
                net = self._build(shape[0], 2, meta)
                images = torch.empty(batch, *shape)
                target = torch.zeros(batch, dtype=torch.long)
            net.train()
            step = allocations(lambda: torch.nn.functional.cross_entropy(net(images), target))
            dim = net.eval().embed(images[:1]).shape[1]
            return (Trained(parameter_bytes(net, trainable=True), step, int(dim)),
                    parameter_bytes(net, trainable=False))

        return measured((type(self), repr(self), shape, batch), measure)

    def _frozen(self) -> bool:
        return self.backbone == "pretrained" and bool(self.freeze)

    # -- training ------------------------------------------------------------------

    def _check(self, labels: np.ndarray | None) -> np.ndarray:
        if labels is None or not np.any(np.asarray(labels) >= 0):
            raise ValueError("classifier needs a labelled dataset (got no labels)")
        if self.backbone not in ("cnn", "pretrained"):
            raise ValueError(
                f"classifier: backbone must be cnn or pretrained, got {self.backbone!r}")
        if self.backbone == "pretrained" and not self.model:
            raise ValueError(
                "classifier: backbone 'pretrained' needs `model`, as the pretrained encoder "
                f"takes it: a built-in model ({', '.join(imagenet.MODELS)}), a model folder "
                f"or a hub id such as {EXAMPLE_ID}")
        if self.batch_norm not in ("frozen", "train"):
            raise ValueError(
                f"classifier: batch_norm must be frozen or train, got {self.batch_norm!r}")
        if not 0 <= self.val_fraction < 1:
            raise ValueError(f"classifier: val_fraction must be in [0, 1), got {self.val_fraction}")
        for name in ("lr", "backbone_lr"):
            if not getattr(self, name) > 0:
                raise ValueError(f"classifier: {name} must be > 0, got {getattr(self, name)}")
        for name in ("epochs", "batch_size", "width", "embedding_dim"):
            if getattr(self, name) < 1:
                raise ValueError(f"classifier: {name} must be >= 1, got {getattr(self, name)}")
        labels = np.asarray(labels).astype(np.int64)
        known = np.flatnonzero(labels >= 0)
        if len(np.unique(labels[known])) < 2:
            raise ValueError("classifier needs a labelled dataset with at least two classes")
        return labels

    def fit(self, images: np.ndarray, labels: np.ndarray | None = None) -> Classifier:
        import torch
        from sklearn.model_selection import train_test_split

        labels = self._check(labels)
        if len(labels) != len(images):
            raise ValueError(f"classifier: {len(images)} images but {len(labels)} labels")
        known = np.flatnonzero(labels >= 0)
        # Labels may skip values (a class filtered out): train on dense indices but
        # report per-class scores under the dataset's own label values.
        self.classes_ = np.unique(labels[known])
        target = np.searchsorted(self.classes_, labels)
        seed = 0 if self.random_state is None else int(self.random_state)
        if self.val_fraction > 0:
            train, val = train_test_split(known, test_size=self.val_fraction,
                                          stratify=labels[known], random_state=seed)
        else:
            train, val = known, known[:0]
        # Sorted indices read a memory-mapped stack sequentially.
        train, val = np.sort(train), np.sort(val)

        device = select_device(self.device)
        rng = np.random.default_rng(seed)
        self.metrics_: dict[str, float | list[float]] = {"train_loss": [], "val_loss": []}
        # Fork the global torch RNG so that seeding here does not reset the caller's.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            net = self._build(images.shape[1], len(self.classes_), device)
            optimiser = torch.optim.Adam(self._parameter_groups(net), lr=self.lr,
                                         weight_decay=self.weight_decay)
            loss_fn = torch.nn.CrossEntropyLoss()
            for _ in range(self.epochs):
                net.train()
                order = rng.permutation(train)
                total = 0.0
                for start in range(0, len(order), self.batch_size):
                    rows = np.sort(order[start : start + self.batch_size])
                    if len(rows) < 2 and self.backbone == "cnn":
                        continue  # batch norm cannot train on a single item
                    y = torch.as_tensor(target[rows], device=device)
                    loss = loss_fn(net(images[rows]), y)
                    optimiser.zero_grad()
                    loss.backward()
                    optimiser.step()
                    total += float(loss.detach()) * len(rows)
                self.metrics_["train_loss"].append(total / len(train))
                if len(val):
                    logits = self._predict(net, images, val)
                    val_loss = float(loss_fn(torch.as_tensor(logits),
                                             torch.as_tensor(target[val])))
                    self.metrics_["val_loss"].append(val_loss)
        net.eval()
        self.net_ = net
        if len(val):
            proba = _softmax(self._predict(net, images, val))
            self.metrics_.update(self._scores(target[val], proba))
        else:
            del self.metrics_["val_loss"]
        return self

    def _parameter_groups(self, net) -> list[dict]:
        """The trainable weights for Adam: a fine-tuned backbone's at ``backbone_lr``,
        the rest (the CNN, the head) at ``lr``."""
        trainable = [p for p in net.parameters() if p.requires_grad]
        if self.backbone != "pretrained" or self.freeze:
            return [{"params": trainable}]
        head = {id(p) for p in net.head.parameters()}
        return [{"params": [p for p in trainable if id(p) in head]},
                {"params": [p for p in trainable if id(p) not in head], "lr": self.backbone_lr}]

    def _predict(self, net, images: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Logits of ``images[rows]``, in eval mode, in batches."""
        import torch

        net.eval()
        out = []
        with torch.inference_mode():
            for start in range(0, len(rows), self.batch_size):
                out.append(net(images[rows[start : start + self.batch_size]]).float().cpu().numpy())
        return np.concatenate(out)

    def _scores(self, y: np.ndarray, proba: np.ndarray) -> dict[str, float]:
        from sklearn.metrics import roc_auc_score

        scores = {"val_accuracy": float(np.mean(proba.argmax(1) == y))}
        per_class = {}
        for k, label in enumerate(self.classes_):
            positive = y == k
            # AUC is undefined when the held-out split lacks the class (or has only it).
            per_class[f"val_auc.{label}"] = (
                float(roc_auc_score(positive, proba[:, k])) if 0 < positive.sum() < len(y)
                else float("nan")
            )
        present = [v for v in per_class.values() if not np.isnan(v)]
        if len(self.classes_) == 2:
            scores["val_auc"] = per_class[f"val_auc.{self.classes_[1]}"]
        else:
            # Macro one-vs-rest over the classes present, as roc_auc_score(multi_class="ovr").
            scores["val_auc"] = float(np.mean(present)) if present else float("nan")
        scores.update(per_class)
        return scores

    def transform(self, images: np.ndarray) -> np.ndarray:
        import torch

        net = getattr(self, "net_", None)
        if net is None:
            raise ValueError("classifier: call fit (with labels) before transform")
        net.eval()
        parts = []
        with torch.inference_mode():
            # Slice by batch so a memory-mapped image stack is never read whole.
            for start in range(0, len(images), self.batch_size):
                batch = images[start : start + self.batch_size]
                parts.append(net.embed(batch).float().cpu().numpy())
        if not parts:
            return np.empty((0, 0), dtype=np.float32)
        return np.concatenate(parts).astype(np.float32, copy=False)


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)
