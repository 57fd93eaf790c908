"""torchvision.datasets: FashionMNIST and MNIST, over scratchnet.data's files.

``FashionMNIST(root, train=True, transform=None, download=True)`` as torchvision's:
``len(ds)``, ``ds[i]`` is ``(image, label)`` after the transforms, ``ds.classes`` the
class names. The files are looked for in torchvision's place (``root/FashionMNIST/raw``),
then in ``root`` as scratchnet.data lays them out (``root/fashion-mnist/``), then where
scratchnet.data finds them ($SCRATCHNET_DATA, the package's ``datasets/`` cache,
Debian's /usr/share/datasets); only then, with ``download=True``, downloaded (into the
cache, not into ``root``).

Differs from torchvision: without a transform an image is a uint8 NumPy array (H, W),
the values a PIL image would hold.
"""
import pathlib

from .. import data as sn_data
from ..autograd import Tensor
from ..utils.data import default_collate
from .transforms import batchable


class _IDXVisionDataset:
    """Images and labels of an IDX data set (``source``: scratchnet.data's class)."""

    source = None
    classes = []

    def __init__(self, root=None, train=True, transform=None, target_transform=None,
                 download=False):
        self.root = root
        self.train = train
        self.transform = transform
        self.target_transform = target_transform
        found = self._from_root(root) if root is not None else None
        if found is None:
            found = self.source(train=train, download=download)
        self.files = found.root
        self._images, self._labels = found.images, found.labels

    def _from_root(self, root):
        """scratchnet.data's data set read from torchvision's layout under ``root`` or
        from scratchnet's, or None when ``root`` holds neither."""
        for folder in (pathlib.Path(root) / type(self).__name__ / "raw", pathlib.Path(root)):
            try:
                return self.source(root=folder, train=self.train, download=False)
            except FileNotFoundError:
                continue
        return None

    @property
    def class_to_idx(self):
        return {c: i for i, c in enumerate(self.classes)}

    @property
    def data(self):
        """The images as a uint8 Tensor (N, H, W)."""
        return Tensor(self._images)

    @property
    def targets(self):
        """The labels as an int64 Tensor (N,)."""
        return Tensor(self._labels)

    def __len__(self):
        return len(self._labels)

    def __getitem__(self, index):
        """(the image after ``transform``, the label as an int after ``target_transform``)."""
        img, target = self._images[index], int(self._labels[index])
        if self.transform is not None:
            img = self.transform(img)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return img, target

    def get_batch(self, indices):
        """What a DataLoader's default_collate makes of ``[self[i] for i in indices]``,
        [images, labels], computed for the whole minibatch at once where the transforms
        allow it (transforms.batchable)."""
        if not (batchable(self.transform) and self.target_transform is None):
            return default_collate([self[int(i)] for i in indices])
        images = self._images[indices]
        if self.transform is not None:
            images = self.transform.batch(images)
        return [images if isinstance(images, Tensor) else Tensor(images),
                Tensor(self._labels[indices])]

    def __repr__(self):
        lines = [f"Number of datapoints: {len(self)}"]
        if self.root is not None:
            lines.append(f"Root location: {self.root}")
        lines.append(f"Split: {'Train' if self.train else 'Test'}")
        if self.transform is not None or self.target_transform is not None:
            # torchvision indents the first line of this block only
            block = ["StandardTransform"]
            for head, t in (("Transform: ", self.transform),
                            ("Target transform: ", self.target_transform)):
                if t is not None:
                    sub = repr(t).splitlines()
                    block += [head + sub[0]] + [" " * len(head) + s for s in sub[1:]]
            lines.append("\n".join(block))
        return "\n".join([f"Dataset {type(self).__name__}"] + ["    " + s for s in lines])


class FashionMNIST(_IDXVisionDataset):
    """Fashion-MNIST: 60,000 training and 10,000 test images, 28 x 28, of 10 classes."""

    source = sn_data.FashionMNIST
    classes = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
               "Sneaker", "Bag", "Ankle boot"]


class MNIST(_IDXVisionDataset):
    """MNIST: 60,000 training and 10,000 test images of handwritten digits, 28 x 28."""

    source = sn_data.MNIST
    classes = ["0 - zero", "1 - one", "2 - two", "3 - three", "4 - four", "5 - five",
               "6 - six", "7 - seven", "8 - eight", "9 - nine"]


def __getattr__(name):
    """A torchvision.datasets name scratchnet lacks says so in one line."""
    if name.startswith("__"):
        raise AttributeError(name)
    raise AttributeError(f"torchvision.datasets.{name} is not part of scratchnet (its "
                         f"data sets are FashionMNIST and MNIST)")
