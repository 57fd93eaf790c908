# Generated from notebooks/7.6_lenet.ipynb by notebooks/build.py: edit those, not this file.

# # 7.6 Convolutional Neural Networks (LeNet)
#
# The code cells are the seed notebook's cells for d2l 1.0.3 section 7.6, as written;
# only their import lines were changed (`scratchnet.port`: `import torch` became
# `import scratchnet as torch`, and so on). The text between them says what each cell
# shows and what scratchnet runs underneath. Cells headed *Underneath* are scratchnet's
# own additions, after the book's cells.

# The imports, as in 7.2.

import scratchnet as torch
from scratchnet import nn
from scratchnet import d2l

# ## 7.6.1 LeNet
#
# `LeNet` is a `d2l.Classifier` whose `net` is an `nn.Sequential` of scratchnet's layers,
# each with its own `forward` and `backward`. `init_cnn` tests `type(module) == nn.Linear`,
# which holds: the lazy layers become `nn.Conv2d` and `nn.Linear` at their first call, as
# PyTorch's do.

def init_cnn(module):
    """Initialize weights for CNNs."""
    if type(module) == nn.Linear or type(module) == nn.Conv2d:
        nn.init.xavier_uniform_(module.weight)

class LeNet(d2l.Classifier):
    """The LeNet-5 model."""
    def __init__(self, lr=0.1, num_classes=10):
        super().__init__()
        self.save_hyperparameters()
        self.net = nn.Sequential(
            nn.LazyConv2d(6, kernel_size=5, padding=2), nn.Sigmoid(),
            nn.AvgPool2d(kernel_size=2, stride=2),
            nn.LazyConv2d(16, kernel_size=5), nn.Sigmoid(),
            nn.AvgPool2d(kernel_size=2, stride=2),
            nn.Flatten(),
            nn.LazyLinear(120), nn.Sigmoid(),
            nn.LazyLinear(84), nn.Sigmoid(),
            nn.LazyLinear(num_classes))

# `layer_summary` passes a random 28x28 image through the layers one by one.

@d2l.add_to_class(d2l.Classifier)
def layer_summary(self, X_shape):
    X = torch.randn(*X_shape)
    for layer in self.net:
        X = layer(X)
        print(layer.__class__.__name__, 'output shape:\t', X.shape)

model = LeNet()
model.layer_summary((1, 1, 28, 28))

# ## 7.6.2 Training
#
# The stored output is the book's recipe in full: 10 epochs over all 60000 training
# images, batch 128, SGD with lr 0.1, on the CPU (`num_gpus=1` finds no GPU there and says
# so). Every layer has its own backward, so `Trainer.fit` backpropagates by hand:
# `model.net.backward(...)` runs each layer's backward, last to first, with no tape (the
# first epoch line says so). d2l's plot is redrawn after every epoch.

trainer = d2l.Trainer(max_epochs=10, num_gpus=1)
data = d2l.FashionMNIST(batch_size=128)
model = LeNet(lr=0.1)
model.apply_init([next(iter(data.get_dataloader(True)))[0]], init_cnn)
trainer.fit(model, data)

# ### Underneath: one training step by hand
#
# What `Trainer.fit` did at every step, written out on one batch: each layer's own forward
# on the arrays, the loss's backward (softmax minus one-hot, over the batch size), then
# `model.net.backward`, which returns dL/dX and fills every parameter's `.grad`.

X, y = next(iter(data.val_dataloader()))
loss = nn.CrossEntropyLoss()
l = loss(model.net(X.array), y.array)
model.net.zero_grad()
dX = model.net.backward(loss.backward())
print(f'loss {float(l):.4f}, dL/dX {dX.shape}, '
      f'dL/dW of the first convolution {model.net[0].weight.grad.shape}')
