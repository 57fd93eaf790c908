"""Data: the IDX reader, Fashion-MNIST / MNIST, and the DataLoader."""
from .datasets import MNIST, DownloadError, FashionMNIST, content_sha256, download_file
from .idx import IDXError, read_idx, write_idx
from .loader import DataLoader, resize_bilinear
