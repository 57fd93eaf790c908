"""Pure array functions: forward and backward pairs, no state.

Each works on numpy and cupy arrays alike (the backend's ``xp``). The layers
in ``scratchnet.nn`` own parameters and call these.
"""
from .activation import relu, relu_backward, sigmoid, sigmoid_backward, tanh, tanh_backward
from .concat import check_concat, concat, concat_backward
from .conv import conv2d, conv2d_backward, conv_pads
from .dropout import dropout, dropout_backward, dropout_mask
from .im2col import col2im, conv_output_hw, im2col, out_size, pair
from .linear import linear, linear_backward
from .loss import (log_softmax, mse, mse_backward, softmax_cross_entropy,
                   softmax_cross_entropy_backward)
from .norm import (batch_norm_eval, batch_norm_eval_backward, batch_norm_train,
                   batch_norm_train_backward)
from .pool import (adaptive_avg_pool2d, adaptive_avg_pool2d_backward, adaptive_bins,
                   avg_pool2d, avg_pool2d_backward, max_pool2d, max_pool2d_backward)
