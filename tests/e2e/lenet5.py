"""LeNet-5 in its common modern form, the PyTorch twin of examples/lenet5.yaml.

LeCun et al. 1998, 1x32x32 input:
  C1  conv 6@5x5        -> 6x28x28      S2  2x2 average pooling -> 6x14x14
  C3  conv 16@5x5       -> 16x10x10     S4  2x2 average pooling -> 16x5x5
  C5  conv 120@5x5      -> 120x1x1      F6  fully connected 84
  output: fully connected 10
ReLU after C1, C3, C5 and F6 (the paper's scaled tanh is not in cnncc's op
set). The attribute names are the state_dict prefixes the spec's layer names
must match: c1.weight, c1.bias, ..., output.bias. 61,706 parameters.
"""

import torch
from torch import nn


class LeNet5(nn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        self.c1 = nn.Conv2d(1, 6, kernel_size=5)
        self.s2 = nn.AvgPool2d(2)
        self.c3 = nn.Conv2d(6, 16, kernel_size=5)
        self.s4 = nn.AvgPool2d(2)
        self.c5 = nn.Conv2d(16, 120, kernel_size=5)
        self.f6 = nn.Linear(120, 84)
        self.output = nn.Linear(84, num_classes)

    def forward(self, x):
        x = self.s2(torch.relu(self.c1(x)))
        x = self.s4(torch.relu(self.c3(x)))
        x = torch.relu(self.c5(x))
        x = torch.flatten(x, 1)
        x = torch.relu(self.f6(x))
        return self.output(x)
