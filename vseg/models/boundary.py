"""The scene-boundary model of SCRL's evaluation protocol: a BiLSTM over a window of shot embeddings.

Wu et al., CVPR 2022, Sec. 4.1 "Evaluation protocol", and SCRL's ``SceneSeg/BiLSTM_protocol.py``. For an
input of ``B`` windows of ``L`` shots::

    Dropout(input_drop) -> Linear(D, 1024) -> BatchNorm1d over the B*L shots -> Dropout(0.7)
    -> 2-layer bidirectional LSTM, 512 per direction, dropout 0.6 between layers        (B, L, 1024)
    -> Linear(1024, 512) -> BatchNorm1d over the shots -> Dropout(0.7) -> ReLU -> Linear(512, 2)

Before all of it, each input feature is standardised with a fixed mean and standard deviation (buffers saved with
the model): 0 and 1 by default, the identity the reference has; ``vseg segment`` with ``data.standardize`` sets them
to the training set's statistics (:meth:`BoundaryBiLSTM.set_input_statistics`).

The output holds a logit pair per shot (class 1: the shot ends a scene); :func:`boundary_probability` is the
softmax's class-1 column that the reference scores. The reference's ``ShotMask`` runs with p = 0, a no-op, and is
left out. The reference's module names map onto ours one to one (:func:`reference_name`), so its checkpoints load.
"""

from __future__ import annotations

import torch
from torch import nn


# SceneSeg BiLSTM_protocol.py's modules -> ours; the input statistics have no counterpart there.
REFERENCE_MODULES = {
    "embed_fc": "project",
    "bn1": "project_bn",
    "lstm": "lstm",
    "fc1": "head",
    "bn2": "head_bn",
    "fc2": "classifier",
}


def reference_name(name: str) -> str | None:
    """The SceneSeg name of one of our state-dict entries (``project.weight`` -> ``embed_fc.weight``), else None."""
    module, _, rest = name.partition(".")
    ours = {mine: theirs for theirs, mine in REFERENCE_MODULES.items()}
    return f"{ours[module]}.{rest}" if module in ours else None


class BoundaryBiLSTM(nn.Module):
    def __init__(
        self,
        input_dim: int = 2048,
        hidden: int = 1024,
        lstm_hidden: int = 512,
        lstm_layers: int = 2,
        head_hidden: int = 512,
        input_drop: float = 0.2,
        drop: float = 0.7,
        lstm_drop: float = 0.6,
    ):
        super().__init__()
        self.input_dim = input_dim
        self.register_buffer("input_mean", torch.zeros(input_dim))
        self.register_buffer("input_std", torch.ones(input_dim))
        self.input_drop = nn.Dropout(input_drop)
        self.project = nn.Linear(input_dim, hidden)
        self.project_bn = nn.BatchNorm1d(hidden)
        self.project_drop = nn.Dropout(drop)
        self.lstm = nn.LSTM(
            hidden, lstm_hidden, num_layers=lstm_layers, batch_first=True, bidirectional=True, dropout=lstm_drop
        )
        self.head = nn.Linear(2 * lstm_hidden, head_hidden)
        self.head_bn = nn.BatchNorm1d(head_hidden)
        self.head_drop = nn.Dropout(drop)
        self.classifier = nn.Linear(head_hidden, 2)

    def set_input_statistics(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """Standardise every input feature as ``(x - mean) / std`` from now on (both of shape ``(D,)``)."""
        self.input_mean.copy_(torch.as_tensor(mean, dtype=torch.float32))
        self.input_std.copy_(torch.as_tensor(std, dtype=torch.float32))

    @staticmethod
    def _per_shot(bn: nn.BatchNorm1d, x: torch.Tensor) -> torch.Tensor:
        """BatchNorm1d over every shot of every window: (B, L, C) -> (B*L, C) -> (B, L, C)."""
        return bn(x.reshape(-1, x.shape[-1])).reshape(x.shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, L, D)`` embeddings -> ``(B, L, 2)`` logits."""
        x = (x - self.input_mean) / self.input_std
        x = self.project_drop(self._per_shot(self.project_bn, self.project(self.input_drop(x))))
        x, _ = self.lstm(x)
        x = torch.relu(self.head_drop(self._per_shot(self.head_bn, self.head(x))))
        return self.classifier(x)


def boundary_probability(logits: torch.Tensor) -> torch.Tensor:
    """``(..., 2)`` logits -> ``(...)`` probability that the shot ends a scene (softmax, class 1)."""
    return torch.softmax(logits.float(), dim=-1)[..., 1]
