"""What LeNet learned: its first-layer kernels and the feature maps of one image.

    python examples/train_lenet.py --recipe modern --out runs/lenet-modern
    python examples/visualize_lenet.py --checkpoint runs/lenet-modern/checkpoint.npz

Without --checkpoint it trains the modern recipe for one epoch first. Writes
kernels.png and feature_maps.png to --out.
"""
import argparse
import pathlib

import numpy as np

import scratchnet as sn
from scratchnet import nn
from scratchnet.data import DataLoader, FashionMNIST
from scratchnet.models import LeNet
from scratchnet.train import Trainer

p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
p.add_argument("--checkpoint", help="a Trainer checkpoint of LeNet (d2l or modern recipe)")
p.add_argument("--recipe", choices=("d2l", "modern"), default="modern")
p.add_argument("--image", type=int, default=0, help="index of the test image to show")
p.add_argument("--data-dir")
p.add_argument("--out", default="docs/img")
args = p.parse_args()
out = pathlib.Path(args.out)
out.mkdir(parents=True, exist_ok=True)

sn.manual_seed(0)
test = FashionMNIST(root=args.data_dir, train=False)
model = LeNet(modern=args.recipe == "modern")
nn.init.apply_init(model, [np.zeros((2, 1, 28, 28), np.float32)])
if args.checkpoint:
    state = sn.load(args.checkpoint)
    model.load_state_dict({k[6:]: v for k, v in state.items() if k.startswith("model.")})
else:
    train = DataLoader(FashionMNIST(root=args.data_dir, train=True), 128, shuffle=True)
    opt = sn.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    Trainer(max_epochs=1).fit(model, train, optimizer=opt)

sn.viz.plot_kernels(model.net[0].weight.data, out / "kernels.png",
                    title=f"LeNet ({args.recipe}) first-layer 5x5 kernels")
image = test.images[args.image] / np.float32(255)
sn.viz.plot_feature_maps(model, image, out / "feature_maps.png")
print(f"test image {args.image} ({test.classes[test.labels[args.image]]}): wrote "
      f"{out / 'kernels.png'} and {out / 'feature_maps.png'}")
