"""PyTorch reference modules for the zoo networks that torchvision lacks.

Each module is written from its paper and is the twin of one spec in
examples/: attribute names are the state_dict prefixes the spec's layer names
must produce. make_ref.py builds them with seeded random weights and checks
the parameter count (model.parameters(), as cnn_info.num_params counts)
against the figure in NETWORKS there; docs/zoo.md lists them.

  alexnet_lecture  Krizhevsky et al. 2012 as the lecture draws it: 227x227,
                   LRN, the two-GPU split as groups=2 (conv2, conv4, conv5).
                   60,965,224 parameters (paper: "60 million").
  zfnet            Zeiler & Fergus 2013 with the lecture's changes to AlexNet:
                   CONV1 7x7 stride 2, CONV3-5 512/1024/512 filters.
                   107,627,624 parameters (no figure in the paper for this
                   exact variant).
  inception_v4     Szegedy et al. 2016, 299x299, the widely used layout
                   (Cadene's pretrainedmodels / timm): BasicConv2d = conv
                   without bias + BN(eps 1e-3) + ReLU; avg-pool branches with
                   count_include_pad=False. 42,679,816 parameters
                   (paper/implementations: 42.7M; 1000 classes here).
  preact_resnet18  He et al. 2016 ("Identity Mappings"), ImageNet, as
                   fb.resnet.torch's preresnet.lua builds it: post-activated
                   stem, first unit of layer1 without pre-activation, the
                   first unit of later stages shares its BN-ReLU between the
                   residual and the projection shortcut; final BN-ReLU.
                   11,687,720 parameters (the paper gives no figure for 18
                   layers).
  preact_resnet164 the same paper's CIFAR-10 ResNet-164 (bottleneck units
                   16/32/64 x4, 18 per stage, KaimingHe/resnet-1k-layers):
                   1,703,258 parameters (paper: 1.7M).
  wrn28_10         Zagoruyko & Komodakis 2016, WRN-28-10 on CIFAR-10:
                   pre-activation basic units of width 160/320/640, 4 per
                   stage; 36,479,194 parameters (paper: 36.5M).
  stochastic_depth Huang et al. 2016, CIFAR-10 ResNet-110 (54 basic units,
                   16/32/64), shortcuts of their code (1x1 average pool with
                   stride, zero channel padding); at inference unit l of L=54
                   has its residual branch scaled by p_l = 1 - l/L * 0.5.
                   1,727,962 parameters (paper: 1.7M).
  fractalnet       Larsson et al. 2016, CIFAR: B=5 blocks of C=4 columns,
                   (64, 128, 256, 512, 512) channels, 2x2 max pool after
                   each block, joins = elementwise mean over the columns
                   that meet; conv3x3 + BN + ReLU units; linear classifier.
                   76,106,634 parameters (as we recall the paper's CIFAR
                   table -- not re-checked here -- it lists 38.6M for 20
                   layers and 22.9M for 40 layers, so it must use other
                   widths; not reproduced).
  modern_blocks    not a zoo network: one of each block the mobile and
                   efficient networks are made of, taken from torchvision
                   itself (MobileNetV2's InvertedResidual, EfficientNet's
                   MBConv with squeeze-excitation, MobileNetV3's
                   InvertedResidual with Hardswish and a Hardsigmoid gate,
                   ShuffleNetV2's units, ConvNeXt's downsampling and
                   CNBlock), then what they do not use (GELU's tanh form,
                   a clamp, ONNX's HardSigmoid, global max pooling, a gate
                   from a Linear). Its spec is tests/e2e/modern_blocks.yaml,
                   from the block files in examples/blocks/.
  nin              Lin et al. 2013, the CIFAR-10 network of the paper's
                   cuda-convnet/Caffe definition: mlpconv 192-160-96,
                   192-192-192, 192-192-10, global average pooling.
                   966,986 parameters (paper: none given; ~0.97M is the
                   usual figure for this definition).
"""

import torch
from torch import nn
import torch.nn.functional as F


# ------------------------------------------------------------------ AlexNet

class AlexNetLecture(nn.Module):
    """AlexNet as the lecture draws it (Krizhevsky et al. 2012, Fig. 2):
    227x227x3 -> CONV1 96@11x11/4 -> 55x55, LRN, POOL1 3x3/2 -> 27x27,
    CONV2 256@5x5 pad 2 (2 groups), LRN, POOL2 -> 13x13, CONV3 384@3x3 (full),
    CONV4 384@3x3 (2 groups), CONV5 256@3x3 (2 groups), POOL3 -> 6x6,
    FC6 4096, FC7 4096, FC8 1000. LRN: size 5, alpha 1e-4, beta 0.75, k 2."""

    def __init__(self, num_classes=1000):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 96, 11, stride=4)
        self.norm1 = nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0)
        self.pool1 = nn.MaxPool2d(3, 2)
        self.conv2 = nn.Conv2d(96, 256, 5, padding=2, groups=2)
        self.norm2 = nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0)
        self.pool2 = nn.MaxPool2d(3, 2)
        self.conv3 = nn.Conv2d(256, 384, 3, padding=1)
        self.conv4 = nn.Conv2d(384, 384, 3, padding=1, groups=2)
        self.conv5 = nn.Conv2d(384, 256, 3, padding=1, groups=2)
        self.pool5 = nn.MaxPool2d(3, 2)
        self.fc6 = nn.Linear(256 * 6 * 6, 4096)
        self.fc7 = nn.Linear(4096, 4096)
        self.fc8 = nn.Linear(4096, num_classes)

    def forward(self, x):
        x = self.pool1(self.norm1(F.relu(self.conv1(x))))
        x = self.pool2(self.norm2(F.relu(self.conv2(x))))
        x = F.relu(self.conv3(x))
        x = F.relu(self.conv4(x))
        x = self.pool5(F.relu(self.conv5(x)))
        x = torch.flatten(x, 1)
        x = F.relu(self.fc6(x))          # dropout: identity at inference
        x = F.relu(self.fc7(x))
        return self.fc8(x)


class ZFNet(nn.Module):
    """ZFNet (Zeiler & Fergus 2013, Fig. 3) with the lecture's summary of its
    changes to AlexNet: CONV1 7x7 stride 2 (96 filters), CONV3/4/5 with
    512/1024/512 filters; one GPU (no groups); LRN after the first two
    conv layers as in AlexNet. 224x224 -> 110 -> pool 55 -> 26 -> pool 13
    -> 13 -> 13 -> 13 -> pool 6."""

    def __init__(self, num_classes=1000):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 96, 7, stride=2, padding=1)
        self.norm1 = nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0)
        self.pool1 = nn.MaxPool2d(3, 2, padding=1)
        self.conv2 = nn.Conv2d(96, 256, 5, stride=2)
        self.norm2 = nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0)
        self.pool2 = nn.MaxPool2d(3, 2, padding=1)
        self.conv3 = nn.Conv2d(256, 512, 3, padding=1)
        self.conv4 = nn.Conv2d(512, 1024, 3, padding=1)
        self.conv5 = nn.Conv2d(1024, 512, 3, padding=1)
        self.pool5 = nn.MaxPool2d(3, 2)
        self.fc6 = nn.Linear(512 * 6 * 6, 4096)
        self.fc7 = nn.Linear(4096, 4096)
        self.fc8 = nn.Linear(4096, num_classes)

    def forward(self, x):
        x = self.pool1(self.norm1(F.relu(self.conv1(x))))
        x = self.pool2(self.norm2(F.relu(self.conv2(x))))
        x = F.relu(self.conv3(x))
        x = F.relu(self.conv4(x))
        x = self.pool5(F.relu(self.conv5(x)))
        x = torch.flatten(x, 1)
        x = F.relu(self.fc6(x))
        x = F.relu(self.fc7(x))
        return self.fc8(x)


# -------------------------------------------------------------- Inception-v4

class BasicConv2d(nn.Module):
    def __init__(self, cin, cout, kernel_size, stride=1, padding=0):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel_size, stride=stride,
                              padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=0.001)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))


def _avgpool3():
    return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)


class Mixed3a(nn.Module):
    def __init__(self):
        super().__init__()
        self.maxpool = nn.MaxPool2d(3, stride=2)
        self.conv = BasicConv2d(64, 96, 3, stride=2)

    def forward(self, x):
        return torch.cat([self.maxpool(x), self.conv(x)], 1)


class Mixed4a(nn.Module):
    def __init__(self):
        super().__init__()
        self.branch0 = nn.Sequential(BasicConv2d(160, 64, 1), BasicConv2d(64, 96, 3))
        self.branch1 = nn.Sequential(
            BasicConv2d(160, 64, 1),
            BasicConv2d(64, 64, (1, 7), padding=(0, 3)),
            BasicConv2d(64, 64, (7, 1), padding=(3, 0)),
            BasicConv2d(64, 96, 3))

    def forward(self, x):
        return torch.cat([self.branch0(x), self.branch1(x)], 1)


class Mixed5a(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = BasicConv2d(192, 192, 3, stride=2)
        self.maxpool = nn.MaxPool2d(3, stride=2)

    def forward(self, x):
        return torch.cat([self.conv(x), self.maxpool(x)], 1)


class InceptionA(nn.Module):
    def __init__(self):
        super().__init__()
        self.branch0 = BasicConv2d(384, 96, 1)
        self.branch1 = nn.Sequential(BasicConv2d(384, 64, 1),
                                     BasicConv2d(64, 96, 3, padding=1))
        self.branch2 = nn.Sequential(BasicConv2d(384, 64, 1),
                                     BasicConv2d(64, 96, 3, padding=1),
                                     BasicConv2d(96, 96, 3, padding=1))
        self.branch3 = nn.Sequential(_avgpool3(), BasicConv2d(384, 96, 1))

    def forward(self, x):
        return torch.cat([self.branch0(x), self.branch1(x), self.branch2(x),
                          self.branch3(x)], 1)


class ReductionA(nn.Module):
    def __init__(self):
        super().__init__()
        self.branch0 = BasicConv2d(384, 384, 3, stride=2)
        self.branch1 = nn.Sequential(BasicConv2d(384, 192, 1),
                                     BasicConv2d(192, 224, 3, padding=1),
                                     BasicConv2d(224, 256, 3, stride=2))
        self.branch2 = nn.MaxPool2d(3, stride=2)

    def forward(self, x):
        return torch.cat([self.branch0(x), self.branch1(x), self.branch2(x)], 1)


class InceptionB(nn.Module):
    def __init__(self):
        super().__init__()
        self.branch0 = BasicConv2d(1024, 384, 1)
        self.branch1 = nn.Sequential(
            BasicConv2d(1024, 192, 1),
            BasicConv2d(192, 224, (1, 7), padding=(0, 3)),
            BasicConv2d(224, 256, (7, 1), padding=(3, 0)))
        self.branch2 = nn.Sequential(
            BasicConv2d(1024, 192, 1),
            BasicConv2d(192, 192, (7, 1), padding=(3, 0)),
            BasicConv2d(192, 224, (1, 7), padding=(0, 3)),
            BasicConv2d(224, 224, (7, 1), padding=(3, 0)),
            BasicConv2d(224, 256, (1, 7), padding=(0, 3)))
        self.branch3 = nn.Sequential(_avgpool3(), BasicConv2d(1024, 128, 1))

    def forward(self, x):
        return torch.cat([self.branch0(x), self.branch1(x), self.branch2(x),
                          self.branch3(x)], 1)


class ReductionB(nn.Module):
    def __init__(self):
        super().__init__()
        self.branch0 = nn.Sequential(BasicConv2d(1024, 192, 1),
                                     BasicConv2d(192, 192, 3, stride=2))
        self.branch1 = nn.Sequential(
            BasicConv2d(1024, 256, 1),
            BasicConv2d(256, 256, (1, 7), padding=(0, 3)),
            BasicConv2d(256, 320, (7, 1), padding=(3, 0)),
            BasicConv2d(320, 320, 3, stride=2))
        self.branch2 = nn.MaxPool2d(3, stride=2)

    def forward(self, x):
        return torch.cat([self.branch0(x), self.branch1(x), self.branch2(x)], 1)


class InceptionC(nn.Module):
    def __init__(self):
        super().__init__()
        self.branch0 = BasicConv2d(1536, 256, 1)
        self.branch1_0 = BasicConv2d(1536, 384, 1)
        self.branch1_1a = BasicConv2d(384, 256, (1, 3), padding=(0, 1))
        self.branch1_1b = BasicConv2d(384, 256, (3, 1), padding=(1, 0))
        self.branch2_0 = BasicConv2d(1536, 384, 1)
        self.branch2_1 = BasicConv2d(384, 448, (3, 1), padding=(1, 0))
        self.branch2_2 = BasicConv2d(448, 512, (1, 3), padding=(0, 1))
        self.branch2_3a = BasicConv2d(512, 256, (1, 3), padding=(0, 1))
        self.branch2_3b = BasicConv2d(512, 256, (3, 1), padding=(1, 0))
        self.branch3 = nn.Sequential(_avgpool3(), BasicConv2d(1536, 256, 1))

    def forward(self, x):
        x0 = self.branch0(x)
        x1 = self.branch1_0(x)
        x1 = torch.cat([self.branch1_1a(x1), self.branch1_1b(x1)], 1)
        x2 = self.branch2_2(self.branch2_1(self.branch2_0(x)))
        x2 = torch.cat([self.branch2_3a(x2), self.branch2_3b(x2)], 1)
        return torch.cat([x0, x1, x2, self.branch3(x)], 1)


class InceptionV4(nn.Module):
    """299x299 -> stem (features.0-5) -> 35x35x384 -> 4x Inception-A ->
    Reduction-A -> 17x17x1024 -> 7x Inception-B -> Reduction-B -> 8x8x1536
    -> 3x Inception-C -> global average pool -> last_linear."""

    def __init__(self, num_classes=1000):
        super().__init__()
        self.features = nn.Sequential(
            BasicConv2d(3, 32, 3, stride=2),
            BasicConv2d(32, 32, 3),
            BasicConv2d(32, 64, 3, padding=1),
            Mixed3a(), Mixed4a(), Mixed5a(),
            InceptionA(), InceptionA(), InceptionA(), InceptionA(),
            ReductionA(),
            InceptionB(), InceptionB(), InceptionB(), InceptionB(),
            InceptionB(), InceptionB(), InceptionB(),
            ReductionB(),
            InceptionC(), InceptionC(), InceptionC())
        self.last_linear = nn.Linear(1536, num_classes)

    def forward(self, x):
        x = self.features(x)
        x = F.adaptive_avg_pool2d(x, 1).flatten(1)
        return self.last_linear(x)          # dropout: identity at inference


# ----------------------------------------------------- pre-activation ResNets

class PreActUnit(nn.Module):
    """One pre-activation residual unit (He et al. 2016b), basic (two 3x3)
    or bottleneck (1x1, 3x3, 1x1 to 4x planes). preact:
      'residual'  BN-ReLU on the residual branch only; identity shortcut;
      'both'      the unit's BN-ReLU feeds both the residual branch and the
                  1x1 projection shortcut (units that change the shape);
      'none'      no pre-activation (the input is already BN-ReLU'd: the
                  first unit after a post-activated ImageNet stem)."""

    def __init__(self, cin, planes, stride=1, bottleneck=False, preact="residual",
                 dropout=0.0):
        super().__init__()
        cout = planes * 4 if bottleneck else planes
        self.preact = preact
        self.bottleneck = bottleneck
        if preact != "none":
            self.bn1 = nn.BatchNorm2d(cin)
        if bottleneck:
            self.conv1 = nn.Conv2d(cin, planes, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(planes)
            self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
            self.bn3 = nn.BatchNorm2d(planes)
            self.conv3 = nn.Conv2d(planes, cout, 1, bias=False)
        else:
            self.conv1 = nn.Conv2d(cin, planes, 3, stride, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(planes)
            self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        if stride != 1 or cin != cout:
            self.shortcut = nn.Conv2d(cin, cout, 1, stride, bias=False)
        else:
            self.shortcut = None

    def forward(self, x):
        a = F.relu(self.bn1(x)) if self.preact != "none" else x
        if self.bottleneck:
            y = self.conv1(a)
            y = self.conv2(F.relu(self.bn2(y)))
            y = self.conv3(F.relu(self.bn3(y)))
        else:
            y = self.conv1(a)
            y = self.conv2(F.relu(self.bn2(y)))   # (WRN's dropout: identity)
        if self.shortcut is not None:
            s = self.shortcut(a if self.preact == "both" else x)
        else:
            s = x
        return y + s


def _preact_stage(cin, planes, n, stride, bottleneck, first):
    units, cout = [], planes * 4 if bottleneck else planes
    for i in range(n):
        c = cin if i == 0 else cout
        needs_proj = i == 0 and (stride != 1 or c != cout)
        preact = (first if i == 0 else "residual")
        if needs_proj and preact == "residual":
            preact = "both"
        units.append(PreActUnit(c, planes, stride if i == 0 else 1, bottleneck, preact))
    return nn.Sequential(*units)


class PreActResNetImageNet(nn.Module):
    """Pre-activation ResNet for 224x224 (fb.resnet.torch preresnet.lua):
    conv1 7x7/2 + BN + ReLU + maxpool, stages of basic units (64..512), the
    first unit of layer1 without pre-activation, final BN-ReLU (bn), global
    average pool, fc."""

    def __init__(self, blocks=(2, 2, 2, 2), num_classes=1000):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = _preact_stage(64, 64, blocks[0], 1, False, "none")
        self.layer2 = _preact_stage(64, 128, blocks[1], 2, False, "both")
        self.layer3 = _preact_stage(128, 256, blocks[2], 2, False, "both")
        self.layer4 = _preact_stage(256, 512, blocks[3], 2, False, "both")
        self.bn = nn.BatchNorm2d(512)
        self.fc = nn.Linear(512, num_classes)

    def forward(self, x):
        x = self.maxpool(F.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = F.relu(self.bn(x))
        return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))


class PreActResNetCifar(nn.Module):
    """CIFAR pre-activation ResNets: conv1 3x3 (16 channels, no BN), three
    stages of n units at widths w1..w3 (stride 1, 2, 2), each stage's first
    unit pre-activating both paths, final BN-ReLU (bn), global average
    pool, fc. ResNet-164: bottleneck, n = 18, planes 16/32/64. WRN-28-10:
    basic, n = 4, widths 160/320/640 (Zagoruyko & Komodakis 2016)."""

    def __init__(self, n, widths, bottleneck, num_classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        exp = 4 if bottleneck else 1
        c = 16
        for i, (w, s) in enumerate(zip(widths, (1, 2, 2))):
            setattr(self, f"layer{i + 1}", _preact_stage(c, w, n, s, bottleneck, "both"))
            c = w * exp
        self.bn = nn.BatchNorm2d(c)
        self.fc = nn.Linear(c, num_classes)

    def forward(self, x):
        x = self.layer3(self.layer2(self.layer1(self.conv1(x))))
        x = F.relu(self.bn(x))
        return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))


# ----------------------------------------------------------- stochastic depth

class StochasticDepthUnit(nn.Module):
    """Post-activation basic unit of the CIFAR ResNet (He et al. 2015) as
    Huang et al.'s code builds it; at inference the residual branch is
    scaled by its survival probability: relu(shortcut(x) + p * F(x))."""

    def __init__(self, cin, cout, stride, survival):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.stride, self.pad = stride, cout - cin
        self.survival = survival

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        s = x
        if self.stride != 1 or self.pad:
            s = F.avg_pool2d(x, 1, self.stride)             # subsample
            s = torch.cat([s, s * 0.0], 1)                  # zero channels
        return F.relu(s + self.survival * y)


class StochasticDepthResNet(nn.Module):
    """CIFAR ResNet-110 (n = 18 units per stage, 16/32/64 channels) with
    linearly decaying survival probabilities p_l = 1 - l / L * (1 - p_L),
    p_L = 0.5, l = 1..L over all L = 3n units."""

    def __init__(self, n=18, p_last=0.5, num_classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        L, l, c = 3 * n, 0, 16
        for i, (w, s) in enumerate(zip((16, 32, 64), (1, 2, 2))):
            units = []
            for k in range(n):
                l += 1
                units.append(StochasticDepthUnit(c, w, s if k == 0 else 1,
                                                 1.0 - l / L * (1.0 - p_last)))
                c = w
            setattr(self, f"layer{i + 1}", nn.Sequential(*units))
        self.fc = nn.Linear(64, num_classes)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))


# ----------------------------------------------------------------- FractalNet

class ConvBNReLU(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, 1, 1, bias=False)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))


class Fractal(nn.Module):
    """f_1(z) = conv(z); f_C(z) = join(conv(z), f_{C-1}(f_{C-1}(z))), where
    the join at the end of f_C averages every column that ends there: the
    shallow conv (column 1) and the C-1 columns of the second f_{C-1}, i.e.
    (conv(z) + (C-1) * f_{C-1}(...)) / C."""

    def __init__(self, c, cin, cout):
        super().__init__()
        self.c = c
        self.shallow = ConvBNReLU(cin, cout)
        if c > 1:
            self.deep1 = Fractal(c - 1, cin, cout)
            self.deep2 = Fractal(c - 1, cout, cout)

    def forward(self, x):
        s = self.shallow(x)
        if self.c == 1:
            return s
        d = self.deep2(self.deep1(x))
        return (s + (self.c - 1) * d) / self.c


class FractalNet(nn.Module):
    def __init__(self, columns=4, widths=(64, 128, 256, 512, 512), num_classes=10):
        super().__init__()
        c = 3
        for i, w in enumerate(widths):
            setattr(self, f"block{i + 1}", Fractal(columns, c, w))
            c = w
        self.nblocks = len(widths)
        self.fc = nn.Linear(c, num_classes)

    def forward(self, x):
        for i in range(self.nblocks):
            x = F.max_pool2d(getattr(self, f"block{i + 1}")(x), 2)
        return self.fc(x.flatten(1))


# --------------------------------------------------------- Network in Network

class NiN(nn.Module):
    """Network in Network for CIFAR-10 (Lin et al. 2013): three mlpconv
    blocks (a conv then two 1x1 convs, each followed by ReLU), 3x3/2 max and
    average pooling between them (ceil mode, as in Caffe), dropout (identity
    at inference), and global average pooling over the last block's 10
    maps instead of fully connected layers."""

    def __init__(self, num_classes=10):
        super().__init__()

        def mlpconv(cin, c1, c2, c3, k, pad):
            return nn.Sequential(nn.Conv2d(cin, c1, k, padding=pad), nn.ReLU(),
                                 nn.Conv2d(c1, c2, 1), nn.ReLU(),
                                 nn.Conv2d(c2, c3, 1), nn.ReLU())
        self.mlpconv1 = mlpconv(3, 192, 160, 96, 5, 2)
        self.mlpconv2 = mlpconv(96, 192, 192, 192, 5, 2)
        self.mlpconv3 = mlpconv(192, 192, 192, num_classes, 3, 1)

    def forward(self, x):
        x = F.max_pool2d(self.mlpconv1(x), 3, 2, ceil_mode=True)    # 16x16
        x = F.avg_pool2d(self.mlpconv2(x), 3, 2, ceil_mode=True)    # 8x8
        x = self.mlpconv3(x)
        return F.adaptive_avg_pool2d(x, 1).flatten(1)


# ------------------------------------------------ the mobile networks' blocks

class HardSigmoidAB(nn.Module):
    """ONNX's HardSigmoid, max(0, min(1, alpha x + beta)) (torch has no module
    with these parameters)."""

    def __init__(self, alpha, beta):
        super().__init__()
        self.alpha, self.beta = alpha, beta

    def forward(self, x):
        return torch.clamp(self.alpha * x + self.beta, 0.0, 1.0)


class Extras(nn.Module):
    """What the torchvision blocks do not use: GELU's tanh form, a clamp
    with other bounds than ReLU6's, ONNX's HardSigmoid, and a gate from a
    global max pool through a Linear (a vector of C values times [C, H, W])."""

    def __init__(self, c):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 1)
        self.gelu = nn.GELU(approximate="tanh")
        self.clamp = nn.Hardtanh(-0.1, 6.0)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1)
        self.hsig = HardSigmoidAB(0.2, 0.5)
        self.gate = nn.Linear(c, c)
        self.sigmoid = nn.Sigmoid()

    def forward(self, x):
        y = self.clamp(self.gelu(self.conv(x)))
        y = y * self.hsig(self.conv2(x))
        g = self.sigmoid(self.gate(F.adaptive_max_pool2d(y, 1).flatten(1)))
        return y * g[:, :, None, None]


class ModernBlocks(nn.Module):
    """One of each block of MobileNetV2/V3, EfficientNet, ShuffleNetV2 and
    ConvNeXt, torchvision's own modules, on a 3x64x64 input."""

    def __init__(self, num_classes=10):
        super().__init__()
        from functools import partial
        from torchvision.models.convnext import CNBlock, LayerNorm2d
        from torchvision.models.efficientnet import MBConv, MBConvConfig
        from torchvision.models.mobilenetv2 import InvertedResidual as MBv2
        from torchvision.models.mobilenetv3 import InvertedResidual as MBv3
        from torchvision.models.mobilenetv3 import InvertedResidualConfig
        from torchvision.models.shufflenetv2 import InvertedResidual as ShuffleUnit
        from torchvision.ops.misc import Conv2dNormActivation
        bn3 = partial(nn.BatchNorm2d, eps=1e-3)
        self.stem = Conv2dNormActivation(3, 32, kernel_size=3, stride=2,
                                         activation_layer=nn.ReLU6)        # 32x32x32
        self.mbv2 = nn.Sequential(MBv2(32, 32, 1, 6), MBv2(32, 48, 2, 6))   # 48x16x16
        self.mbconv = MBConv(MBConvConfig(4, 5, 1, 48, 48, 1), 0.2, bn3)
        self.mbv3 = MBv3(InvertedResidualConfig(48, 3, 96, 48, True, "HS", 1, 1, 1.0), bn3)
        self.shuffle = nn.Sequential(ShuffleUnit(48, 64, 2), ShuffleUnit(64, 64, 1))  # 64x8x8
        self.down = nn.Sequential(LayerNorm2d(64, eps=1e-6), nn.Conv2d(64, 96, 2, 2))  # 96x4x4
        self.cnblock = CNBlock(96, 1e-6, 0.0)
        self.extras = Extras(96)
        self.fc = nn.Linear(96, num_classes)

    def forward(self, x):
        x = self.stem(x)
        x = self.mbv2(x)
        x = self.mbv3(self.mbconv(x))
        x = self.down(self.shuffle(x))
        x = self.extras(self.cnblock(x))
        return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))


class PaddedBlocks(nn.Module):
    """Blocks of ShuffleNetV2, MobileNetV3, RegNetY and MobileNetV2
    (torchvision's own modules) whose channel counts are not multiples of
    16 (24, 58, 116, 72, 40, 120, 104 in groups of 8, 26 and 10 squeezed,
    24), on a 3x128x128 input: the end-to-end test of
    passes/pad_channels.c, which pads them for the blocked kernels."""

    def __init__(self, num_classes=10):
        super().__init__()
        from functools import partial
        from torchvision.models.mobilenetv2 import InvertedResidual as MBv2
        from torchvision.models.mobilenetv3 import InvertedResidual as MBv3
        from torchvision.models.mobilenetv3 import InvertedResidualConfig
        from torchvision.models.regnet import ResBottleneckBlock
        from torchvision.models.shufflenetv2 import InvertedResidual as ShuffleUnit
        bn3 = partial(nn.BatchNorm2d, eps=1e-3)
        self.conv1 = nn.Sequential(nn.Conv2d(3, 24, 3, 2, 1, bias=False), nn.BatchNorm2d(24),
                                   nn.ReLU(inplace=True))                       # 24x64x64
        self.maxpool = nn.MaxPool2d(3, 2, 1)                                    # 24x32x32
        self.shuffle = nn.Sequential(ShuffleUnit(24, 116, 2), ShuffleUnit(116, 116, 1))
        self.down = MBv2(116, 40, 2, 6)                                         # 40x8x8
        self.mbv3 = nn.Sequential(
            MBv3(InvertedResidualConfig(40, 5, 72, 40, True, "HS", 1, 1, 1.0), bn3),
            MBv3(InvertedResidualConfig(40, 3, 120, 40, True, "RE", 1, 1, 1.0), bn3))
        self.regnet = nn.Sequential(                                            # 104x4x4
            ResBottleneckBlock(40, 104, 2, nn.BatchNorm2d, nn.ReLU, 8, 1.0, 0.25),
            ResBottleneckBlock(104, 104, 1, nn.BatchNorm2d, nn.ReLU, 8, 1.0, 0.25))
        self.mbv2 = nn.Sequential(MBv2(104, 24, 1, 6), MBv2(24, 24, 1, 6))      # 24x4x4
        self.fc = nn.Linear(24, num_classes)

    def forward(self, x):
        x = self.shuffle(self.maxpool(self.conv1(x)))
        x = self.mbv2(self.regnet(self.mbv3(self.down(x))))
        return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))


def _channel_shuffle(x, groups):
    """torchvision's channel_shuffle: view, transpose, flatten."""
    b, c, h, w = x.shape
    return x.view(b, groups, c // groups, h, w).transpose(1, 2).reshape(b, c, h, w)


class ShuffleBlocks(nn.Module):
    """Channel shuffles in every position passes/fold_shuffle.c treats
    (tests/e2e/shuffle_blocks.yaml), on a 3x32x32 input: torchvision's
    ShuffleNetV2 units of 44 channels (uneven quarters) whose output a
    depthwise conv, relu and max pool read, a shuffle after a conv, a
    shuffle of a conv that an add also reads, and one read by an add
    (kept)."""

    def __init__(self, num_classes=10):
        super().__init__()
        from torchvision.models.shufflenetv2 import InvertedResidual as ShuffleUnit
        self.conv1 = nn.Sequential(nn.Conv2d(3, 24, 3, 2, 1, bias=False), nn.BatchNorm2d(24),
                                   nn.ReLU(inplace=True))                       # 24x16x16
        self.stage = nn.Sequential(ShuffleUnit(24, 44, 2), ShuffleUnit(44, 44, 1),
                                   ShuffleUnit(44, 44, 1), ShuffleUnit(44, 44, 1))  # 44x8x8
        self.dw = nn.Conv2d(44, 44, 3, 1, 1, groups=44)
        self.dw_bn = nn.BatchNorm2d(44)
        self.pool = nn.MaxPool2d(3, 1, 1)
        self.mix = nn.Conv2d(44, 48, 1)
        self.proj = nn.Conv2d(48, 40, 1)
        self.bn_pre = nn.BatchNorm2d(40)
        self.c3 = nn.Conv2d(40, 40, 3, 1, 1)
        self.fc = nn.Linear(40, num_classes)

    def forward(self, x):
        x = self.pool(F.relu(self.dw_bn(self.dw(self.stage(self.conv1(x))))))
        p = self.proj(_channel_shuffle(self.mix(x), 4))
        s = self.c3(F.relu(self.bn_pre(_channel_shuffle(p, 5)))) + p
        s = _channel_shuffle(s, 2) + s
        return self.fc(F.adaptive_avg_pool2d(s, 1).flatten(1))
