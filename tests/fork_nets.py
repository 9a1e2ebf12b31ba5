"""Small nets shaped like the published deploy prototxts of the fork families (for test_fork_nets.py).

Modelled on: farmingyard/ShuffleNet shufflenet_1x_g3_deploy.prototxt (ShuffleChannel,
ConvolutionDepthwise, BatchNorm+Scale, grouped 1x1s, concat/eltwise units), MobileNetV2
deploy nets in the depthwise forks' form (yonghenglh6/DepthwiseConvolution's
DepthwiseConvolution, ConvolutionDepthwise), hszhao/PSPNet pspnet50_ADE20K_473.prototxt
(BN, pyramid pooling with Interp height/width, final Interp zoom_factor),
rbgirshick/py-faster-rcnn models/pascal_voc/VGG16/faster_rcnn_end2end/test.prototxt
(ROIPooling on conv5 with spatial_scale 1/16, fc6/fc7, cls_prob, bbox_pred; the rois that its
Proposal layer makes are an input here) and R-FCN's rfcn test prototxts (rfcn_cls/rfcn_bbox,
PSROIPooling, AVE pooling over the k x k bins). ``bvlc=True`` writes each fork layer in
its exact BVLC form (group Convolution; Reshape-Permute-Reshape) so real Caffe can run it.
"""
from __future__ import annotations


def _conv(name, bottom, out, k=1, s=1, p=0, group=1, bias=False, type_="Convolution", top=None):
    extra = f" group: {group}" if group != 1 else ""
    return (f'layer {{ name: "{name}" type: "{type_}" bottom: "{bottom}" top: "{top or name}" convolution_param {{ '
            f'num_output: {out} kernel_size: {k} stride: {s} pad: {p}{extra} bias_term: {str(bias).lower()} }} }}\n')


def _bn_scale(blob, relu=True):
    text = (f'layer {{ name: "{blob}_bn" type: "BatchNorm" bottom: "{blob}" top: "{blob}" }}\n'
            f'layer {{ name: "{blob}_scale" type: "Scale" bottom: "{blob}" top: "{blob}" scale_param {{ bias_term: true }} }}\n')
    return text + (f'layer {{ name: "{blob}_relu" type: "ReLU" bottom: "{blob}" top: "{blob}" }}\n' if relu else "")


def _dw(name, bottom, c, s, bvlc, type_="ConvolutionDepthwise"):
    if bvlc or type_ == "DepthwiseConvolution":
        return _conv(name, bottom, c, 3, s, 1, group=c, type_="Convolution" if bvlc else type_)
    return _conv(name, bottom, c, 3, s, 1, type_=type_)


def _shuffle(name, bottom, c, hw, group, bvlc):
    if not bvlc:
        return f'layer {{ name: "{name}" type: "ShuffleChannel" bottom: "{bottom}" top: "{name}" shuffle_channel_param {{ group: {group} }} }}\n'
    dims = lambda *d: " ".join(f"dim: {x}" for x in d)  # noqa: E731
    return (f'layer {{ name: "{name}_r1" type: "Reshape" bottom: "{bottom}" top: "{name}_r1" reshape_param {{ shape {{ {dims(0, group, c // group, -1)} }} }} }}\n'
            f'layer {{ name: "{name}_p" type: "Permute" bottom: "{name}_r1" top: "{name}_p" permute_param {{ order: 0 order: 2 order: 1 order: 3 }} }}\n'
            f'layer {{ name: "{name}" type: "Reshape" bottom: "{name}_p" top: "{name}" reshape_param {{ shape {{ {dims(0, c, hw, hw)} }} }} }}\n')


def _head(bottom, classes=10):
    return (f'layer {{ name: "pool_ave" type: "Pooling" bottom: "{bottom}" top: "pool_ave" pooling_param {{ pool: AVE global_pooling: true }} }}\n'
            f'layer {{ name: "fc" type: "InnerProduct" bottom: "pool_ave" top: "fc" inner_product_param {{ num_output: {classes} }} }}\n'
            'layer { name: "prob" type: "Softmax" bottom: "fc" top: "prob" }\n')


def shufflenet(bvlc: bool = False) -> str:
    t = 'name: "shufflenet"\ninput: "data"\ninput_shape { dim: 1 dim: 3 dim: 32 dim: 32 }\n'
    t += _conv("conv1", "data", 12, 3, 2, 1) + _bn_scale("conv1")
    t += 'layer { name: "pool1" type: "Pooling" bottom: "conv1" top: "pool1" pooling_param { pool: MAX kernel_size: 3 stride: 2 } }\n'
    # stride-2 unit: AVE pool shortcut concatenated with the grouped branch
    t += 'layer { name: "resx1_match_conv" type: "Pooling" bottom: "pool1" top: "resx1_match_conv" pooling_param { pool: AVE kernel_size: 3 stride: 2 } }\n'
    t += _conv("resx1_conv1", "pool1", 9) + _bn_scale("resx1_conv1")
    t += _dw("resx1_conv2", "resx1_conv1", 9, 2, bvlc) + _bn_scale("resx1_conv2", relu=False)
    t += _conv("resx1_conv3", "resx1_conv2", 12, group=3) + _bn_scale("resx1_conv3", relu=False)
    t += 'layer { name: "resx1_concat" type: "Concat" bottom: "resx1_match_conv" bottom: "resx1_conv3" top: "resx1_concat" }\n'
    t += 'layer { name: "resx1_concat_relu" type: "ReLU" bottom: "resx1_concat" top: "resx1_concat" }\n'
    # stride-1 unit: grouped 1x1, channel shuffle, depthwise 3x3, grouped 1x1, eltwise sum
    t += _conv("resx2_conv1", "resx1_concat", 9, group=3) + _bn_scale("resx2_conv1")
    t += _shuffle("shuffle2", "resx2_conv1", 9, 4, 3, bvlc)
    t += _dw("resx2_conv2", "shuffle2", 9, 1, bvlc) + _bn_scale("resx2_conv2", relu=False)
    t += _conv("resx2_conv3", "resx2_conv2", 24, group=3) + _bn_scale("resx2_conv3", relu=False)
    t += 'layer { name: "resx2_elewise" type: "Eltwise" bottom: "resx1_concat" bottom: "resx2_conv3" top: "resx2_elewise" }\n'
    t += 'layer { name: "resx2_elewise_relu" type: "ReLU" bottom: "resx2_elewise" top: "resx2_elewise" }\n'
    return t + _head("resx2_elewise")


def mobilenet_v2(bvlc: bool = False) -> str:
    t = 'name: "mobilenet_v2"\nlayer { name: "input" type: "Input" top: "data" input_param { shape { dim: 1 dim: 3 dim: 16 dim: 16 } } }\n'
    t += _conv("conv1", "data", 8, 3, 2, 1) + _bn_scale("conv1")
    t += _conv("conv2_1/expand", "conv1", 24) + _bn_scale("conv2_1/expand")
    t += _dw("conv2_1/dwise", "conv2_1/expand", 24, 1, bvlc, "DepthwiseConvolution") + _bn_scale("conv2_1/dwise")
    t += _conv("conv2_1/linear", "conv2_1/dwise", 8) + _bn_scale("conv2_1/linear", relu=False)
    t += 'layer { name: "block_2_1" type: "Eltwise" bottom: "conv1" bottom: "conv2_1/linear" top: "block_2_1" }\n'
    t += _conv("conv2_2/expand", "block_2_1", 24) + _bn_scale("conv2_2/expand")
    t += _dw("conv2_2/dwise", "conv2_2/expand", 24, 2, bvlc) + _bn_scale("conv2_2/dwise")
    t += _conv("conv2_2/linear", "conv2_2/dwise", 16) + _bn_scale("conv2_2/linear", relu=False)
    t += _conv("conv3", "conv2_2/linear", 32) + _bn_scale("conv3")
    return t + _head("conv3")


def _bn(blob):  # PSPNet's single-layer BN, in place, then ReLU
    return (f'layer {{ name: "{blob}/bn" type: "BN" bottom: "{blob}" top: "{blob}" bn_param {{ slope_filler {{ type: "constant" value: 1 }} '
            f'bias_filler {{ type: "constant" value: 0 }} frozen: true momentum: 0.95 }} }}\n'
            f'layer {{ name: "{blob}/relu" type: "ReLU" bottom: "{blob}" top: "{blob}" }}\n')


def pspnet() -> str:
    t = 'name: "pspnet"\ninput: "data"\ninput_dim: 1\ninput_dim: 3\ninput_dim: 24\ninput_dim: 24\n'
    t += _conv("conv1_1_3x3_s2", "data", 8, 3, 2, 1) + _bn("conv1_1_3x3_s2")
    t += _conv("conv5_3", "conv1_1_3x3_s2", 16, 3, 1, 1) + _bn("conv5_3")
    tops = ["conv5_3"]
    for level, k in ((1, 12), (2, 6), (3, 4), (6, 2)):  # bins 1, 2, 3, 6 of the 12x12 map
        pool = f"conv5_3_pool{level}"
        t += f'layer {{ name: "{pool}" type: "Pooling" bottom: "conv5_3" top: "{pool}" pooling_param {{ pool: AVE kernel_size: {k} stride: {k} }} }}\n'
        t += _conv(f"{pool}_conv", pool, 4) + _bn(f"{pool}_conv")
        t += f'layer {{ name: "{pool}_interp" type: "Interp" bottom: "{pool}_conv" top: "{pool}_interp" interp_param {{ height: 12 width: 12 }} }}\n'
        tops.append(f"{pool}_interp")
    t += 'layer { name: "conv5_3_concat" type: "Concat" ' + " ".join(f'bottom: "{b}"' for b in tops) + ' top: "conv5_3_concat" }\n'
    t += _conv("conv5_4", "conv5_3_concat", 8, 3, 1, 1) + _bn("conv5_4")
    t += 'layer { name: "conv5_4_dropout" type: "Dropout" bottom: "conv5_4" top: "conv5_4" dropout_param { dropout_ratio: 0.1 } }\n'
    t += _conv("conv6", "conv5_4", 5, bias=True)
    return t + 'layer { name: "conv6_interp" type: "Interp" bottom: "conv6" top: "conv6_interp" interp_param { zoom_factor: 2 } }\n'


def _vgg_trunk(t: str) -> str:
    for i, (c, pool) in enumerate(((8, True), (16, True), (16, True), (16, False)), 1):
        bottom = "data" if i == 1 else f"pool{i - 1}"
        t += _conv(f"conv{i}", bottom, c, 3, 1, 1, bias=True)
        t += f'layer {{ name: "relu{i}" type: "ReLU" bottom: "conv{i}" top: "conv{i}" }}\n'
        if pool:
            t += f'layer {{ name: "pool{i}" type: "Pooling" bottom: "conv{i}" top: "pool{i}" pooling_param {{ pool: MAX kernel_size: 2 stride: 2 }} }}\n'
    return t


def _ip(name, bottom, out):
    return f'layer {{ name: "{name}" type: "InnerProduct" bottom: "{bottom}" top: "{name}" inner_product_param {{ num_output: {out} }} }}\n'


def faster_rcnn(rois: int) -> str:
    t = ('name: "VGG_faster_rcnn"\ninput: "data"\ninput_shape { dim: 1 dim: 3 dim: 64 dim: 64 }\n'
         f'input: "rois"\ninput_shape {{ dim: {rois} dim: 5 }}\n')
    t = _vgg_trunk(t)  # conv4: 16 x 8 x 8, stride 8
    t += 'layer { name: "roi_pool5" type: "ROIPooling" bottom: "conv4" bottom: "rois" top: "pool5" roi_pooling_param { pooled_w: 3 pooled_h: 3 spatial_scale: 0.125 } }\n'
    t += _ip("fc6", "pool5", 32) + 'layer { name: "relu6" type: "ReLU" bottom: "fc6" top: "fc6" }\n'
    t += 'layer { name: "drop6" type: "Dropout" bottom: "fc6" top: "fc6" dropout_param { dropout_ratio: 0.5 } }\n'
    t += _ip("fc7", "fc6", 32) + 'layer { name: "relu7" type: "ReLU" bottom: "fc7" top: "fc7" }\n'
    t += _ip("cls_score", "fc7", 5) + _ip("bbox_pred", "fc7", 20)
    return t + 'layer { name: "cls_prob" type: "Softmax" bottom: "cls_score" top: "cls_prob" }\n'


def rfcn(rois: int, k: int = 3, classes: int = 4) -> str:
    t = ('name: "ResNet_rfcn"\ninput: "data"\ninput_shape { dim: 1 dim: 3 dim: 64 dim: 64 }\n'
         f'input: "rois"\ninput_shape {{ dim: {rois} dim: 5 }}\n')
    t = _vgg_trunk(t)
    t += _conv("rfcn_cls", "conv4", classes * k * k, bias=True) + _conv("rfcn_bbox", "conv4", 8 * k * k, bias=True)
    for what, dim in (("cls", classes), ("loc", 8)):
        src = "rfcn_cls" if what == "cls" else "rfcn_bbox"
        t += (f'layer {{ name: "psroipooled_{what}_rois" type: "PSROIPooling" bottom: "{src}" bottom: "rois" '
              f'top: "psroipooled_{what}_rois" psroi_pooling_param {{ spatial_scale: 0.125 output_dim: {dim} group_size: {k} }} }}\n'
              f'layer {{ name: "ave_{what}_score_rois" type: "Pooling" bottom: "psroipooled_{what}_rois" '
              f'top: "{what}_score" pooling_param {{ pool: AVE kernel_size: {k} stride: {k} }} }}\n'
              f'layer {{ name: "{what}_reshape" type: "Reshape" bottom: "{what}_score" top: "{what}_flat" '
              f'reshape_param {{ shape {{ dim: -1 dim: {dim} }} }} }}\n')
    return t + 'layer { name: "cls_prob" type: "Softmax" bottom: "cls_flat" top: "cls_prob" }\n'
