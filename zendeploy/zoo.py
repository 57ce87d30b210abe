"""The ZenNet model zoo as plain data: names, official structure strings, settings and reported figures.

Source: the official repository idstcv/ZenNAS (Apache-2.0), ICCV 2021 release:

- names, ``num_classes``, ``use_SE`` (our ``se``) and ``resolution``: the dict ``zennet_model_zoo`` in
  ``ZenNet/__init__.py`` (all 15 entries, keys copied exactly);
- structure strings: the first line of the ``ZenNet/*.txt`` file each entry names (``plainnet_str_txt``), copied
  character for character, trailing newline stripped. The six CIFAR entries share three files
  (``zennet_cifar_model_size{05M,1M,2M}_res32.txt``): CIFAR-10 and CIFAR-100 models of one size have the same body;
- reported top-1, parameters, FLOPs and latencies: the "Pre-trained Models" tables of ``README.md``.

The latency03ms/05ms/08ms txt files were replaced after the repository's first commit; the structures here are the
current (ICCV 2021) ones, whose parameter and FLOP counts match the current README (85.4M/4.8B, 118M/8.3B,
183M/13.9B). The first commit's res192/res256 variants are not in the current dict or README and are left out.

Units: ``reported_params_m`` in millions of parameters; ``reported_macs_m`` in millions of multiply-accumulates (the
README's "FLOPs"; "1.7B" is stored as 1700.0); ``reported_latency_ms`` in milliseconds per image:

- ``v100_fp16_b64``: NVIDIA V100, batch size 64, float16;
- ``t4_trt_int8_b64``: NVIDIA T4, batch size 64, TensorRT INT8;
- ``pixel2_b1``: Google Pixel2, single image.

The README gives no latency for the CIFAR models. Reported figures are the authors' claims, kept for comparison;
zendeploy never uses them in place of a measurement or of :mod:`zendeploy.cost`.

Two tiny entries (dataset ``'test'``) are zendeploy's own, for fast tests; they are not ZenNets.
"""

from __future__ import annotations

from dataclasses import dataclass

from .registry import Registry


@dataclass(frozen=True)
class ZooEntry:
    name: str
    structure: str  # official structure string
    resolution: int  # input resolution the model was trained/searched at
    num_classes: int
    se: bool  # official use_SE flag
    dataset: str  # 'cifar10' | 'cifar100' | 'imagenet1k' | 'test'
    reported_top1: float | None = None  # % from the official README, None if not given
    reported_params_m: float | None = None  # millions, from the README
    reported_macs_m: float | None = None  # millions of MACs ("FLOPs" in the paper), from the README
    reported_latency_ms: dict | None = None  # ms per image, keys as in the module docstring; None if not given
    source: str = ""


ZOO: Registry[ZooEntry] = Registry("zoo model")


def get_zoo(name: str) -> ZooEntry:
    """The zoo entry called ``name``; an unknown name raises RegistryError naming the closest entry."""
    return ZOO.get(name)


def list_zoo(include: str | None = None, exclude: str | None = None) -> list[str]:
    """Entry names in registration order, filtered by fnmatch patterns (``include="*cifar10_*"``)."""
    return ZOO.names(include=include, exclude=exclude)


_REPO = "idstcv/ZenNAS"

# Structure strings, keyed by the official txt file name (ZenNet/<file>), first line, verbatim.
_STRUCTURES = {
    "zennet_cifar_model_size05M_res32.txt": (
        "SuperConvK3BNRELU(3,64,1,1)SuperResK1K5K1(64,168,1,16,3)SuperResK1K3K1(168,80,2,32,4)"
        "SuperResK1K5K1(80,112,2,16,3)SuperResK1K5K1(112,144,1,24,3)SuperResK1K3K1(144,32,2,40,1)"
        "SuperConvK1BNRELU(32,512,1,1)"
    ),
    "zennet_cifar_model_size1M_res32.txt": (
        "SuperConvK3BNRELU(3,88,1,1)SuperResK1K7K1(88,120,1,16,1)SuperResK1K7K1(120,192,2,16,3)"
        "SuperResK1K5K1(192,224,1,24,4)SuperResK1K5K1(224,96,2,24,2)SuperResK1K3K1(96,168,2,40,3)"
        "SuperResK1K3K1(168,112,1,48,3)SuperConvK1BNRELU(112,512,1,1)"
    ),
    "zennet_cifar_model_size2M_res32.txt": (
        "SuperConvK3BNRELU(3,32,1,1)SuperResK1K5K1(32,120,1,40,1)SuperResK1K5K1(120,176,2,32,3)"
        "SuperResK1K7K1(176,272,1,24,3)SuperResK1K3K1(272,176,1,56,3)SuperResK1K3K1(176,176,1,64,4)"
        "SuperResK1K5K1(176,216,2,40,2)SuperResK1K3K1(216,72,2,56,2)SuperConvK1BNRELU(72,512,1,1)"
    ),
    "zennet_imagenet1k_flops400M_res224.txt": (
        "SuperConvK3BNRELU(3,16,2,1)SuperResIDWE1K7(16,40,2,40,1)SuperResIDWE1K7(40,64,2,64,1)"
        "SuperResIDWE4K7(64,96,2,96,5)SuperResIDWE2K7(96,224,2,224,5)SuperConvK1BNRELU(224,2048,1,1)"
    ),
    "zennet_imagenet1k_flops600M_res224.txt": (
        "SuperConvK3BNRELU(3,24,2,1)SuperResIDWE1K7(24,48,2,48,1)SuperResIDWE2K7(48,72,2,72,1)"
        "SuperResIDWE6K7(72,96,2,88,5)SuperResIDWE4K7(96,192,2,168,5)SuperConvK1BNRELU(192,2048,1,1)"
    ),
    "zennet_imagenet1k_flops900M_res224.txt": (
        "SuperConvK3BNRELU(3,16,2,1)SuperResIDWE1K7(16,48,2,72,1)SuperResIDWE2K7(48,72,2,64,3)"
        "SuperResIDWE2K7(72,152,2,144,3)SuperResIDWE2K7(152,360,2,352,4)SuperResIDWE4K7(360,288,1,264,3)"
        "SuperConvK1BNRELU(288,2048,1,1)"
    ),
    "zennet_imagenet1k_latency01ms_res224.txt": (
        "SuperConvK3BNRELU(3,24,2,1)SuperResK3K3(24,32,2,64,1)SuperResK5K5(32,64,2,32,1)"
        "SuperResK5K5(64,168,2,96,1)SuperResK1K5K1(168,320,1,120,1)SuperResK1K5K1(320,640,2,304,3)"
        "SuperResK1K5K1(640,512,1,384,1)SuperConvK1BNRELU(512,2384,1,1)"
    ),
    "zennet_imagenet1k_latency02ms_res224.txt": (
        "SuperConvK3BNRELU(3,24,2,1)SuperResK1K5K1(24,32,2,32,1)SuperResK1K7K1(32,104,2,64,1)"
        "SuperResK1K5K1(104,512,2,160,1)SuperResK1K5K1(512,344,1,192,1)SuperResK1K5K1(344,688,2,320,4)"
        "SuperResK1K5K1(688,680,1,304,3)SuperConvK1BNRELU(680,2552,1,1)"
    ),
    "zennet_imagenet1k_latency03ms_res224.txt": (
        "SuperConvK3BNRELU(3,24,2,1)SuperResK1K5K1(24,64,2,32,1)SuperResK1K3K1(64,128,2,128,1)"
        "SuperResK1K7K1(128,432,2,128,1)SuperResK1K5K1(432,272,1,160,1)SuperResK1K5K1(272,848,2,384,4)"
        "SuperResK1K5K1(848,848,1,320,3)SuperResK1K5K1(848,456,1,320,3)SuperConvK1BNRELU(456,6704,1,1)"
    ),
    "zennet_imagenet1k_latency05ms_res224.txt": (
        "SuperConvK3BNRELU(3,8,2,1)SuperResK1K7K1(8,64,2,32,1)SuperResK1K3K1(64,152,2,128,1)"
        "SuperResK1K5K1(152,640,2,192,4)SuperResK1K5K1(640,640,1,192,2)SuperResK1K5K1(640,1536,2,384,4)"
        "SuperResK1K5K1(1536,816,1,384,3)SuperResK1K5K1(816,816,1,384,3)SuperConvK1BNRELU(816,5304,1,1)"
    ),
    "zennet_imagenet1k_latency08ms_res224.txt": (
        "SuperConvK3BNRELU(3,16,2,1)SuperResK1K5K1(16,64,2,64,1)SuperResK1K3K1(64,240,2,128,2)"
        "SuperResK1K7K1(240,640,2,160,3)SuperResK1K7K1(640,768,1,192,4)SuperResK1K5K1(768,1536,2,384,5)"
        "SuperResK1K5K1(1536,1536,1,384,3)SuperResK1K5K1(1536,2304,1,384,5)SuperConvK1BNRELU(2304,4912,1,1)"
    ),
    "zennet_imagenet1k_latency12ms_res224.txt": (
        "SuperConvK3BNRELU(3,32,2,1)SuperResK1K5K1(32,80,2,32,1)SuperResK1K7K1(80,432,2,128,5)"
        "SuperResK1K7K1(432,640,2,192,3)SuperResK1K7K1(640,1008,1,160,5)SuperResK1K7K1(1008,976,1,160,4)"
        "SuperResK1K5K1(976,2304,2,384,5)SuperResK1K5K1(2304,2496,1,384,5)SuperConvK1BNRELU(2496,3072,1,1)"
    ),
}


def _lat(v100: float, t4: float, pixel2: float) -> dict:
    return {"v100_fp16_b64": v100, "t4_trt_int8_b64": t4, "pixel2_b1": pixel2}


# name, txt file, num_classes, use_SE, resolution, dataset, top-1 %, params M, MACs M, latency (README tables)
_OFFICIAL = [
    ("zennet_cifar10_model_size05M_res32", "zennet_cifar_model_size05M_res32.txt", 10, False, 32, "cifar10",
     96.2, 0.5, 140.0, None),
    ("zennet_cifar10_model_size1M_res32", "zennet_cifar_model_size1M_res32.txt", 10, False, 32, "cifar10",
     96.2, 1.0, 162.0, None),
    ("zennet_cifar10_model_size2M_res32", "zennet_cifar_model_size2M_res32.txt", 10, False, 32, "cifar10",
     97.5, 2.0, 487.0, None),
    ("zennet_cifar100_model_size05M_res32", "zennet_cifar_model_size05M_res32.txt", 100, False, 32, "cifar100",
     79.9, 0.5, 140.0, None),
    ("zennet_cifar100_model_size1M_res32", "zennet_cifar_model_size1M_res32.txt", 100, False, 32, "cifar100",
     80.1, 1.0, 162.0, None),
    ("zennet_cifar100_model_size2M_res32", "zennet_cifar_model_size2M_res32.txt", 100, False, 32, "cifar100",
     84.4, 2.0, 487.0, None),
    ("zennet_imagenet1k_flops400M_SE_res224", "zennet_imagenet1k_flops400M_res224.txt", 1000, True, 224,
     "imagenet1k", 78.0, 5.7, 410.0, _lat(0.25, 0.39, 87.9)),
    ("zennet_imagenet1k_flops600M_SE_res224", "zennet_imagenet1k_flops600M_res224.txt", 1000, True, 224,
     "imagenet1k", 79.1, 7.1, 611.0, _lat(0.36, 0.52, 128.6)),
    ("zennet_imagenet1k_flops900M_SE_res224", "zennet_imagenet1k_flops900M_res224.txt", 1000, True, 224,
     "imagenet1k", 80.8, 19.4, 934.0, _lat(0.55, 0.55, 215.7)),
    ("zennet_imagenet1k_latency01ms_res224", "zennet_imagenet1k_latency01ms_res224.txt", 1000, False, 224,
     "imagenet1k", 77.8, 30.1, 1700.0, _lat(0.1, 0.08, 181.7)),
    ("zennet_imagenet1k_latency02ms_res224", "zennet_imagenet1k_latency02ms_res224.txt", 1000, False, 224,
     "imagenet1k", 80.8, 49.7, 3400.0, _lat(0.2, 0.15, 357.4)),
    ("zennet_imagenet1k_latency03ms_res224", "zennet_imagenet1k_latency03ms_res224.txt", 1000, False, 224,
     "imagenet1k", 81.5, 85.4, 4800.0, _lat(0.3, 0.20, 517.0)),
    ("zennet_imagenet1k_latency05ms_res224", "zennet_imagenet1k_latency05ms_res224.txt", 1000, False, 224,
     "imagenet1k", 82.7, 118.0, 8300.0, _lat(0.5, 0.30, 798.7)),
    ("zennet_imagenet1k_latency08ms_res224", "zennet_imagenet1k_latency08ms_res224.txt", 1000, False, 224,
     "imagenet1k", 83.0, 183.0, 13900.0, _lat(0.8, 0.57, 1365.0)),
    ("zennet_imagenet1k_latency12ms_res224", "zennet_imagenet1k_latency12ms_res224.txt", 1000, False, 224,
     "imagenet1k", 83.6, 180.0, 22000.0, _lat(1.2, 0.85, 2051.0)),
]

for (_name, _txt, _classes, _se, _res, _dataset, _top1, _params, _macs, _latency) in _OFFICIAL:
    ZOO.register(_name, ZooEntry(
        name=_name, structure=_STRUCTURES[_txt], resolution=_res, num_classes=_classes, se=_se, dataset=_dataset,
        reported_top1=_top1, reported_params_m=_params, reported_macs_m=_macs, reported_latency_ms=_latency,
        source=f"{_REPO} ZenNet/{_txt}",
    ))

_TEST_SOURCE = "zendeploy test structure"
for _name, _structure in (
    ("test_tiny_resnet",
     "SuperConvK3BNRELU(3,8,1,1)SuperResK1K3K1(8,16,2,8,1)SuperResK3K3(16,24,2,16,1)SuperResK1K5K1(24,32,2,16,1)"
     "SuperConvK1BNRELU(32,64,1,1)"),
    ("test_tiny_mobilenet",
     "SuperConvK3BNRELU(3,8,2,1)SuperResIDWE2K3(8,16,2,8,1)SuperResIDWE4K5(16,24,2,16,1)"
     "SuperResIDWE6K7(24,32,1,16,1)SuperConvK1BNRELU(32,64,1,1)"),
):
    ZOO.register(_name, ZooEntry(
        name=_name, structure=_structure, resolution=32, num_classes=10, se=False, dataset="test", source=_TEST_SOURCE,
    ))

del _name, _txt, _classes, _se, _res, _dataset, _top1, _params, _macs, _latency, _structure
