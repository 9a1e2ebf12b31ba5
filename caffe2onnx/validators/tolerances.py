"""The default tolerances of a parity check (no imports: the CLI's help text shows them)."""

# fp32 on CPU, onnxruntime vs Caffe. Both sides compute in fp32 but sum in a different
# order (MLAS vs OpenBLAS blocking, fused vs separate ops), so they agree to rounding,
# not bit for bit. fp32 resolves 2^-23 ~ 1.2e-7 of a value; a dot product of length K
# (K = 3x3x512 = 4608 in a VGG conv, 9216 in AlexNet fc6) accumulates ~sqrt(K)*eps
# ~ 1e-5 of its magnitude, and a deep net adds that layer upon layer. rtol 1e-4 of
# the blob's largest magnitude leaves ~10x headroom over that, while a real mapping
# bug (a wrong LRN k, a swapped coefficient, a wrong axis) is off by 1e-2..1 of it.
# rtol alone would be meaningless on blobs that are (nearly) all zeros, and atol
# alone is impossible on large blobs (one ulp at magnitude 1000 is already 6e-5),
# hence the OR: atol 1e-4 covers small-magnitude blobs such as probabilities.
# Measured: BVLC GoogLeNet (seeded random weights, 142 blobs) vs real Caffe, worst
# max_rel 3.7e-6 (the prob blob; 1.0e-6 elsewhere): 27x below rtol.
CPU_ATOL = 1e-4
CPU_RTOL = 1e-4
# CUDA/TensorRT: cuDNN picks algorithms (Winograd, FFT, split-K GEMMs) whose rounding
# is several times larger; TF32 is switched off (use_tf32=0, NVIDIA_TF32_OVERRIDE=0),
# since TF32's 10-bit mantissa (1e-3 relative per product) would need far looser bounds.
GPU_ATOL = 1e-3
GPU_RTOL = 1e-3
# --fp16 models, on any provider. float16 has an 11-bit significand: each rounding is off by up to
# 2^-11 ~ 4.9e-4 relative, the weights are rounded once and (on GPUs) every op's output again,
# so a deep net drifts by a few 1e-3 of a blob's magnitude. Measured: BVLC GoogLeNet (seeded
# random weights, the corpus cat.jpg, 142 blobs) on onnxruntime 1.32 CPU, worst max_rel 2.1e-3
# (prob; 1.9e-3 elsewhere). 1e-2 leaves ~5x headroom and still fails a mapping bug (1e-1..1).
FP16_ATOL = 1e-2
FP16_RTOL = 1e-2
