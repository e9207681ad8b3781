// Geometry of one DCNv3 call, shared by the CPU and CUDA kernels.
#pragma once

#include <cstdint>

#include <ATen/core/Tensor.h>

namespace dcnv3 {

struct Dcnv3Params {
  int64_t batch, height_in, width_in, channels;
  int64_t height_out, width_out;
  int64_t kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, dilation_h, dilation_w;
  int64_t group, group_channels, points;
  double offset_scale;
  bool remove_center;
};

// Validates shapes/devices/dtypes (TORCH_CHECK, i.e. a Python RuntimeError, never a crash) and fills
// the geometry. The Python wrapper validates first with friendlier messages; this is the safety net
// for direct torch.ops calls.
Dcnv3Params make_params(const at::Tensor& input, const at::Tensor& offset, const at::Tensor& mask,
                        int64_t kernel_h, int64_t kernel_w, int64_t stride_h, int64_t stride_w,
                        int64_t pad_h, int64_t pad_w, int64_t dilation_h, int64_t dilation_w,
                        int64_t group, int64_t group_channels, double offset_scale,
                        bool remove_center);

// Checks that grad_output matches the output of the call described by `p` (device, dtype, shape).
void check_grad_output(const at::Tensor& grad_output, const at::Tensor& input,
                       const Dcnv3Params& p);

}  // namespace dcnv3
