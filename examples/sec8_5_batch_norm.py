# Generated from notebooks/8.5_batch_norm.ipynb by notebooks/build.py: edit those, not this file.

# # 8.5 Batch Normalization
#
# The code cells are the PyTorch cells of d2l section 8.5 as the book writes them
# (d2l-en's `batch-norm.md`, copied in `tests/d2l_chapters/`); only their import lines were
# changed (`scratchnet.port`: `import torch` became `import scratchnet as torch`, and so
# on). The text between them says what each cell shows and what scratchnet runs
# underneath. Cells headed *Underneath* are scratchnet's own additions, after the book's
# cells; so is the setup cell below.

# ### Setup: `tab` (scratchnet's cell, not the book's)
#
# The book writes each cell for four frameworks at once and asks d2lbook's `tab` which
# branch to run: `if tab.selected('pytorch'):`. Here the cells stay as written, so this
# cell stands in for d2lbook: `tab.selected(...)` is true when `'pytorch'` is among its
# names, and only the PyTorch branches run.

import types

tab = types.SimpleNamespace(selected=lambda *tabs: 'pytorch' in tabs)

# The imports, as in 7.2.

from scratchnet import d2l
import scratchnet as torch
from scratchnet import nn

# ## 8.5.3 Implementation from Scratch
#
# `batch_norm` uses tensor ops alone. In training (`torch.is_grad_enabled()` is true
# outside `torch.no_grad()`) it normalises with the batch's mean and variance and updates
# the moving averages; in prediction it uses the moving averages. It returns
# `moving_mean.data`: as in PyTorch, a Tensor sharing the array but cut from the graph,
# so each step's moving average does not carry the graphs of all the steps before.

def batch_norm(X, gamma, beta, moving_mean, moving_var, eps, momentum):
    # Use is_grad_enabled to determine whether we are in training mode
    if not torch.is_grad_enabled():
        # In prediction mode, use mean and variance obtained by moving average
        X_hat = (X - moving_mean) / torch.sqrt(moving_var + eps)
    else:
        assert len(X.shape) in (2, 4)
        if len(X.shape) == 2:
            # When using a fully connected layer, calculate the mean and
            # variance on the feature dimension
            mean = X.mean(dim=0)
            var = ((X - mean) ** 2).mean(dim=0)
        else:
            # When using a two-dimensional convolutional layer, calculate the
            # mean and variance on the channel dimension (axis=1). Here we
            # need to maintain the shape of X, so that the broadcasting
            # operation can be carried out later
            mean = X.mean(dim=(0, 2, 3), keepdim=True)
            var = ((X - mean) ** 2).mean(dim=(0, 2, 3), keepdim=True)
        # In training mode, the current mean and variance are used 
        X_hat = (X - mean) / torch.sqrt(var + eps)
        # Update the mean and variance using moving average
        moving_mean = (1.0 - momentum) * moving_mean + momentum * mean
        moving_var = (1.0 - momentum) * moving_var + momentum * var
    Y = gamma * X_hat + beta  # Scale and shift
    return Y, moving_mean.data, moving_var.data

# `BatchNorm` keeps gamma and beta as parameters and the moving averages as plain
# tensors. It defines only `forward`, so it runs on the tape.

class BatchNorm(nn.Module):
    # num_features: the number of outputs for a fully connected layer or the
    # number of output channels for a convolutional layer. num_dims: 2 for a
    # fully connected layer and 4 for a convolutional layer
    def __init__(self, num_features, num_dims):
        super().__init__()
        if num_dims == 2:
            shape = (1, num_features)
        else:
            shape = (1, num_features, 1, 1)
        # The scale parameter and the shift parameter (model parameters) are
        # initialized to 1 and 0, respectively
        self.gamma = nn.Parameter(torch.ones(shape))
        self.beta = nn.Parameter(torch.zeros(shape))
        # The variables that are not model parameters are initialized to 0 and
        # 1
        self.moving_mean = torch.zeros(shape)
        self.moving_var = torch.ones(shape)

    def forward(self, X):
        # If X is not on the main memory, copy moving_mean and moving_var to
        # the device where X is located
        if self.moving_mean.device != X.device:
            self.moving_mean = self.moving_mean.to(X.device)
            self.moving_var = self.moving_var.to(X.device)
        # Save the updated moving_mean and moving_var
        Y, self.moving_mean, self.moving_var = batch_norm(
            X, self.gamma, self.beta, self.moving_mean,
            self.moving_var, eps=1e-5, momentum=0.1)
        return Y

# ### Underneath: the tape's gradient equals `nn.BatchNorm2d`'s backward
#
# On the tape the book's layer is a dozen recorded ops. X reaches Y three ways (directly,
# through the mean and through the variance), so the leaf sums three gradients (the last
# line). scratchnet's `nn.BatchNorm2d` has one `backward` derived by hand, with the three
# paths in one formula (`scratchnet.teach.batch_norm_train_backward` is its readable
# version; docs/autograd.md sets the two side by side). From the same X and dL/dY they
# give the same gradients.

import scratchnet.autograd as ag

torch.manual_seed(0)
X = torch.randn(4, 3, 5, 5, requires_grad=True)
W = torch.randn(4, 3, 5, 5)  # L = sum(W * Y), so dL/dY = W
bn_book = BatchNorm(3, num_dims=4)
loss = (bn_book(X) * W).sum()
print('\n'.join(ag.backward_order(loss)))
loss.backward()
bn = nn.BatchNorm2d(3)
bn(X.array)
dX = bn.backward(W.array)
print('dL/dgamma, tape:  ', bn_book.gamma.grad.reshape(-1))
print('dL/dgamma, manual:', bn.weight.grad)
print('dL/dbeta,  tape:  ', bn_book.beta.grad.reshape(-1))
print('dL/dbeta,  manual:', bn.bias.grad)
print('largest |dL/dX, tape - dL/dX, manual|:', float(abs(X.grad.array - dX).max()))

# ### Underneath: `.data`
#
# The layer keeps what `batch_norm` returned, `moving_mean.data`: a Tensor that needs no
# gradient. And `.data` shares its parameter's array, as in PyTorch:
# a write into `gamma.data` is a write into gamma (docs/porting.md).

print(type(bn_book.moving_mean).__name__, bn_book.moving_mean.requires_grad)
d = bn_book.gamma.data
d += 1
print(bn_book.gamma.reshape(-1))

# ## 8.5.4 LeNet with Batch Normalization
#
# LeNet with the book's `BatchNorm` after each convolution and each hidden linear layer.

class BNLeNetScratch(d2l.Classifier):
    def __init__(self, lr=0.1, num_classes=10):
        super().__init__()
        self.save_hyperparameters()
        if tab.selected('mxnet'):
            self.net = nn.Sequential()
            self.net.add(
                nn.Conv2D(6, kernel_size=5), BatchNorm(6, num_dims=4),
                nn.Activation('sigmoid'),
                nn.AvgPool2D(pool_size=2, strides=2),
                nn.Conv2D(16, kernel_size=5), BatchNorm(16, num_dims=4),
                nn.Activation('sigmoid'),
                nn.AvgPool2D(pool_size=2, strides=2), nn.Dense(120),
                BatchNorm(120, num_dims=2), nn.Activation('sigmoid'),
                nn.Dense(84), BatchNorm(84, num_dims=2),
                nn.Activation('sigmoid'), nn.Dense(num_classes))
            self.initialize()
        if tab.selected('pytorch'):
            self.net = nn.Sequential(
                nn.LazyConv2d(6, kernel_size=5), BatchNorm(6, num_dims=4),
                nn.Sigmoid(), nn.AvgPool2d(kernel_size=2, stride=2),
                nn.LazyConv2d(16, kernel_size=5), BatchNorm(16, num_dims=4),
                nn.Sigmoid(), nn.AvgPool2d(kernel_size=2, stride=2),
                nn.Flatten(), nn.LazyLinear(120),
                BatchNorm(120, num_dims=2), nn.Sigmoid(), nn.LazyLinear(84),
                BatchNorm(84, num_dims=2), nn.Sigmoid(),
                nn.LazyLinear(num_classes))
        if tab.selected('tensorflow'):
            self.net = tf.keras.models.Sequential([
                tf.keras.layers.Conv2D(filters=6, kernel_size=5,
                                       input_shape=(28, 28, 1)),
                BatchNorm(), tf.keras.layers.Activation('sigmoid'),
                tf.keras.layers.AvgPool2D(pool_size=2, strides=2),
                tf.keras.layers.Conv2D(filters=16, kernel_size=5),
                BatchNorm(), tf.keras.layers.Activation('sigmoid'),
                tf.keras.layers.AvgPool2D(pool_size=2, strides=2),
                tf.keras.layers.Flatten(), tf.keras.layers.Dense(120),
                BatchNorm(), tf.keras.layers.Activation('sigmoid'),
                tf.keras.layers.Dense(84), BatchNorm(),
                tf.keras.layers.Activation('sigmoid'),
                tf.keras.layers.Dense(num_classes)])

# The stored output is the book's recipe in full: 10 epochs over all 60000 training
# images, batch 128, lr 0.1, on the CPU (`num_gpus=1` finds no GPU there and says so).
# `BatchNorm` has no backward of its own, so the trainer backpropagates through the tape
# (the first epoch line says so).

trainer = d2l.Trainer(max_epochs=10, num_gpus=1)
data = d2l.FashionMNIST(batch_size=128)
model = BNLeNetScratch(lr=0.1)
if tab.selected('pytorch'):
    model.apply_init([next(iter(data.get_dataloader(True)))[0]], d2l.init_cnn)
trainer.fit(model, data)

# With batch normalisation LeNet learns from the first epoch, where 7.6's LeNet (the same
# recipe without it) stayed near chance for two epochs. The first `BatchNorm` layer's
# learned gamma and beta, one per channel:

print(model.net[1].gamma.reshape((-1,)), model.net[1].beta.reshape((-1,)))

# ## 8.5.5 Concise Implementation
#
# `nn.LazyBatchNorm2d` and `nn.LazyBatchNorm1d` are scratchnet's layers, each with its
# own backward; with them every layer of `BNLeNet` has one.

class BNLeNet(d2l.Classifier):
    def __init__(self, lr=0.1, num_classes=10):
        super().__init__()
        self.save_hyperparameters()
        if tab.selected('mxnet'):
            self.net = nn.Sequential()
            self.net.add(
                nn.Conv2D(6, kernel_size=5), nn.BatchNorm(),
                nn.Activation('sigmoid'),
                nn.AvgPool2D(pool_size=2, strides=2),
                nn.Conv2D(16, kernel_size=5), nn.BatchNorm(),
                nn.Activation('sigmoid'),
                nn.AvgPool2D(pool_size=2, strides=2),
                nn.Dense(120), nn.BatchNorm(), nn.Activation('sigmoid'),
                nn.Dense(84), nn.BatchNorm(), nn.Activation('sigmoid'),
                nn.Dense(num_classes))
            self.initialize()
        if tab.selected('pytorch'):
            self.net = nn.Sequential(
                nn.LazyConv2d(6, kernel_size=5), nn.LazyBatchNorm2d(),
                nn.Sigmoid(), nn.AvgPool2d(kernel_size=2, stride=2),
                nn.LazyConv2d(16, kernel_size=5), nn.LazyBatchNorm2d(),
                nn.Sigmoid(), nn.AvgPool2d(kernel_size=2, stride=2),
                nn.Flatten(), nn.LazyLinear(120), nn.LazyBatchNorm1d(),
                nn.Sigmoid(), nn.LazyLinear(84), nn.LazyBatchNorm1d(),
                nn.Sigmoid(), nn.LazyLinear(num_classes))
        if tab.selected('tensorflow'):
            self.net = tf.keras.models.Sequential([
                tf.keras.layers.Conv2D(filters=6, kernel_size=5,
                                       input_shape=(28, 28, 1)),
                tf.keras.layers.BatchNormalization(),
                tf.keras.layers.Activation('sigmoid'),
                tf.keras.layers.AvgPool2D(pool_size=2, strides=2),
                tf.keras.layers.Conv2D(filters=16, kernel_size=5),
                tf.keras.layers.BatchNormalization(),
                tf.keras.layers.Activation('sigmoid'),
                tf.keras.layers.AvgPool2D(pool_size=2, strides=2),
                tf.keras.layers.Flatten(), tf.keras.layers.Dense(120),
                tf.keras.layers.BatchNormalization(),
                tf.keras.layers.Activation('sigmoid'),
                tf.keras.layers.Dense(84),
                tf.keras.layers.BatchNormalization(),
                tf.keras.layers.Activation('sigmoid'),
                tf.keras.layers.Dense(num_classes)])

# The same recipe in full. This time the trainer backpropagates by hand.

trainer = d2l.Trainer(max_epochs=10, num_gpus=1)
data = d2l.FashionMNIST(batch_size=128)
model = BNLeNet(lr=0.1)
if tab.selected('pytorch'):
    model.apply_init([next(iter(data.get_dataloader(True)))[0]], d2l.init_cnn)
trainer.fit(model, data)

# ### Underneath: `scratchnet.models.BNLeNet`
#
# `scratchnet.models.BNLeNet` is the same network: the same layers under the same
# `state_dict` keys (so weights load from one into the other), every layer and block with
# a `backward` of its own, so it always trains by hand.
# `python examples/train_cnn.py --model bnlenet` trains it with the book's settings.

from scratchnet import models

mine = models.BNLeNet()
mine(torch.zeros(2, 1, 28, 28))  # the lazy layers take their shapes
print(list(model.state_dict()) == list(mine.state_dict()))
