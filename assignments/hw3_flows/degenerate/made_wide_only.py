"""made_masks correct only in the special cases the connectivity checks probe: no hidden
layers, or every hidden layer with at least in_features - 1 units. Narrower networks get
all-zero masks, which are trivially autoregressive but follow no degree rule."""
import torch

_reference_made_masks = made_masks  # noqa: F821 (the reference's, defined above this fragment)


def made_masks(in_features, hidden_sizes, order=None):
    masks = _reference_made_masks(in_features, hidden_sizes, order)
    if all(h >= in_features - 1 for h in hidden_sizes):
        return masks
    return [torch.zeros_like(m) for m in masks]
