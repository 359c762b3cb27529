"""made_masks that is autoregressive because nothing is connected: every hidden unit sees no
input (as if of degree -1) and the outputs see every hidden unit; the single mask without
hidden layers is exact. It follows the connection rules for some degrees, but no wide
layer reaches an input."""
import torch


def made_masks(in_features, hidden_sizes, order=None):
    order = torch.arange(in_features) if order is None else torch.as_tensor(order)
    dtype = torch.get_default_dtype()
    if not hidden_sizes:
        return [(order[:, None] > order[None, :]).to(dtype)]
    sizes = [in_features, *hidden_sizes]
    masks = [torch.zeros(hidden_sizes[0], in_features, dtype=dtype)]
    masks += [torch.ones(n_out, n_in, dtype=dtype) for n_in, n_out in zip(sizes[1:-1], sizes[2:])]
    masks.append(torch.ones(in_features, hidden_sizes[-1], dtype=dtype))
    return masks
