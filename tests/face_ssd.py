"""A test net shaped like OpenCV's res10_300x300_ssd face detector (samples/dnn/face_detector/deploy.prototxt):
300x300 input, a ResNet-10 trunk with BatchNorm+Scale, Normalize on conv4_3 (per pixel, per channel),
six heads with PriorBox, a 2-class DetectionOutput. Written here from that layout (same layer
names, sizes and head parameters), without OpenCV's own `clip` DetectionOutput field, which neither
weiliu89's schema nor real Caffe's has."""
from __future__ import annotations


def _conv(name, bottom, top, num, k, s=1, p=0, bias=True, dilation=1):
    extra = "" if bias else " bias_term: false"
    dil = f" dilation: {dilation}" if dilation != 1 else ""
    return (f'layer {{ name: "{name}" type: "Convolution" bottom: "{bottom}" top: "{top}" convolution_param {{ '
            f'num_output: {num} pad: {p} kernel_size: {k} stride: {s}{dil}{extra} }} }}\n')


def _bn_scale(prefix, bottom, top, relu=True):
    text = (f'layer {{ name: "{prefix}_bn" type: "BatchNorm" bottom: "{bottom}" top: "{top}" }}\n'
            f'layer {{ name: "{prefix}_scale" type: "Scale" bottom: "{top}" top: "{top}" '
            'scale_param { bias_term: true } }\n')
    return text + (f'layer {{ name: "{prefix}_relu" type: "ReLU" bottom: "{top}" top: "{top}" }}\n' if relu else "")


def _block(n, bottom, out, stride, first_bn=True, dilation=1):
    """A pre-activation residual block layer_<n>_1 of res10."""
    pre = f"layer_{n}_1_bn1"
    text = _bn_scale(pre, bottom, pre) if first_bn else ""
    src = pre if first_bn else bottom
    text += _conv(f"layer_{n}_1_conv1", src, f"layer_{n}_1_conv1", out // (2 if n == 512 else 1), 3,
                  1 if n == 512 else stride, 1, bias=False)
    text += _bn_scale(f"layer_{n}_1_bn2", f"layer_{n}_1_conv1", f"layer_{n}_1_conv1")
    text += _conv(f"layer_{n}_1_conv2", f"layer_{n}_1_conv1", f"layer_{n}_1_conv2", out, 3, 1, dilation,
                  bias=False, dilation=dilation)
    if first_bn:
        text += _conv(f"layer_{n}_1_conv_expand", pre, f"layer_{n}_1_conv_expand", out, 1,
                      1 if n == 512 else stride, 0, bias=False)
        skip = f"layer_{n}_1_conv_expand"
    else:
        skip = bottom
    return text + (f'layer {{ name: "layer_{n}_1_sum" type: "Eltwise" bottom: "layer_{n}_1_conv2" '
                   f'bottom: "{skip}" top: "layer_{n}_1_sum" }}\n')


# head source, priors per location, min_size, max_size, aspect ratios, step
HEADS = [("conv4_3_norm", 4, 30, 60, (2,), 8), ("fc7", 6, 60, 111, (2, 3), 16),
         ("conv6_2_h", 6, 111, 162, (2, 3), 32), ("conv7_2_h", 6, 162, 213, (2, 3), 64),
         ("conv8_2_h", 4, 213, 264, (2,), 100), ("conv9_2_h", 4, 264, 315, (2,), 300)]


def _head(src, priors, min_size, max_size, ratios, step):
    name = src.replace("_h", "")
    text = ""
    for kind, per in (("loc", 4), ("conf", 2)):
        base = f"{name}_mbox_{kind}"
        text += _conv(base, src, base, priors * per, 3, 1, 1)
        text += (f'layer {{ name: "{base}_perm" type: "Permute" bottom: "{base}" top: "{base}_perm" '
                 'permute_param { order: 0 order: 2 order: 3 order: 1 } }\n'
                 f'layer {{ name: "{base}_flat" type: "Flatten" bottom: "{base}_perm" top: "{base}_flat" }}\n')
    ar = " ".join(f"aspect_ratio: {r}" for r in ratios)
    return text + (f'layer {{ name: "{name}_mbox_priorbox" type: "PriorBox" bottom: "{src}" bottom: "data" '
                   f'top: "{name}_mbox_priorbox" prior_box_param {{ min_size: {min_size} max_size: {max_size} {ar} '
                   'flip: true clip: false variance: 0.1 variance: 0.1 variance: 0.2 variance: 0.2 '
                   f'step: {step} offset: 0.5 }} }}\n')


def face_ssd_prototxt() -> str:
    t = 'name: "res10_300x300_ssd_shaped"\ninput: "data"\ninput_shape { dim: 1 dim: 3 dim: 300 dim: 300 }\n'
    t += _bn_scale("data", "data", "data_bn", relu=False)
    t += _conv("conv1_h", "data_bn", "conv1_h", 32, 7, 2, 3)
    t += _bn_scale("conv1", "conv1_h", "conv1_h")
    t += 'layer { name: "conv1_pool" type: "Pooling" bottom: "conv1_h" top: "conv1_pool" ' \
         'pooling_param { pool: MAX kernel_size: 3 stride: 2 } }\n'
    t += _block(64, "conv1_pool", 32, 1, first_bn=False)
    t += _block(128, "layer_64_1_sum", 128, 2)
    t += _block(256, "layer_128_1_sum", 256, 2)
    t += _block(512, "layer_256_1_sum", 256, 1, dilation=2)
    t += _bn_scale("last", "layer_512_1_sum", "fc7")
    t += ('layer { name: "conv4_3_norm" type: "Normalize" bottom: "layer_256_1_bn1" top: "conv4_3_norm" '
          'norm_param { across_spatial: false channel_shared: false scale_filler { type: "constant" value: 20 } } }\n')
    prev = "fc7"
    for i, (mid, stride, pad) in zip((6, 7, 8, 9), ((128, 2, 1), (64, 2, 1), (64, 1, 0), (64, 1, 0))):
        t += _conv(f"conv{i}_1_h", prev, f"conv{i}_1_h", mid, 1)
        t += f'layer {{ name: "conv{i}_1_relu" type: "ReLU" bottom: "conv{i}_1_h" top: "conv{i}_1_h" }}\n'
        t += _conv(f"conv{i}_2_h", f"conv{i}_1_h", f"conv{i}_2_h", 256 if i == 6 else 128, 3, stride, pad)
        t += f'layer {{ name: "conv{i}_2_relu" type: "ReLU" bottom: "conv{i}_2_h" top: "conv{i}_2_h" }}\n'
        prev = f"conv{i}_2_h"
    for head in HEADS:
        t += _head(*head)
    names = [h[0].replace("_h", "") for h in HEADS]
    for kind, axis in (("loc", 1), ("conf", 1), ("priorbox", 2)):
        suffix = "" if kind == "priorbox" else "_flat"
        bottoms = " ".join(f'bottom: "{n}_mbox_{kind}{suffix}"' for n in names)
        t += (f'layer {{ name: "mbox_{kind}" type: "Concat" {bottoms} top: "mbox_{kind}" '
              f'concat_param {{ axis: {axis} }} }}\n')
    t += ('layer { name: "mbox_conf_reshape" type: "Reshape" bottom: "mbox_conf" top: "mbox_conf_reshape" '
          'reshape_param { shape { dim: 0 dim: -1 dim: 2 } } }\n'
          'layer { name: "mbox_conf_softmax" type: "Softmax" bottom: "mbox_conf_reshape" top: "mbox_conf_softmax" '
          'softmax_param { axis: 2 } }\n'
          'layer { name: "mbox_conf_flatten" type: "Flatten" bottom: "mbox_conf_softmax" top: "mbox_conf_flatten" }\n'
          'layer { name: "detection_out" type: "DetectionOutput" bottom: "mbox_loc" bottom: "mbox_conf_flatten" '
          'bottom: "mbox_priorbox" top: "detection_out" detection_output_param { num_classes: 2 '
          'share_location: true background_label_id: 0 nms_param { nms_threshold: 0.45 top_k: 400 } '
          'code_type: CENTER_SIZE keep_top_k: 200 confidence_threshold: 0.2 } }\n')
    return t
