"""d2l 7.6: LeNet's layer summary (training: examples/train_lenet.py).

    python examples/sec7_6_lenet.py
"""
import scratchnet as sn
from scratchnet.models import LeNet

sn.manual_seed(0)
model = LeNet()
model.layer_summary((1, 1, 28, 28))
