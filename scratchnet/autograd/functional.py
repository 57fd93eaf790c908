"""Moved: torch.nn.functional's ops are ``scratchnet.nn.functional``, where PyTorch keeps
them (above the tape). Port ``from torch.nn import functional as F`` as
``from scratchnet.nn import functional as F``."""
raise ImportError("scratchnet.autograd.functional moved to scratchnet.nn.functional, "
                  "where torch keeps it: write `from scratchnet.nn import functional as F`")
