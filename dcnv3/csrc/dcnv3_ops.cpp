// Operator schemas (namespace `dcnv3`) and the shared argument checks.
//
// The schemas are defined here once; device kernels register themselves with TORCH_LIBRARY_IMPL in
// cpu/dcnv3_cpu.cpp and cuda/dcnv3_cuda.cu. Autograd and fake (meta) kernels are registered from
// Python (dcnv3/_ops.py).
#include <torch/library.h>

#include "cpu/dcnv3_cpu.h"
#include "dcnv3_params.h"

namespace dcnv3 {

Dcnv3Params make_params(const at::Tensor& input, const at::Tensor& offset, const at::Tensor& mask,
                        int64_t kernel_h, int64_t kernel_w, int64_t stride_h, int64_t stride_w,
                        int64_t pad_h, int64_t pad_w, int64_t dilation_h, int64_t dilation_w,
                        int64_t group, int64_t group_channels, double offset_scale,
                        bool remove_center) {
  TORCH_CHECK(input.dim() == 4, "dcnv3: input must be 4-D (N, H, W, C), got ", input.dim(), "-D");
  TORCH_CHECK(offset.dim() == 4, "dcnv3: offset must be 4-D, got ", offset.dim(), "-D");
  TORCH_CHECK(mask.dim() == 4, "dcnv3: mask must be 4-D, got ", mask.dim(), "-D");
  TORCH_CHECK(kernel_h > 0 && kernel_w > 0, "dcnv3: kernel_h/kernel_w must be positive");
  TORCH_CHECK(stride_h > 0 && stride_w > 0, "dcnv3: stride_h/stride_w must be positive");
  TORCH_CHECK(dilation_h > 0 && dilation_w > 0, "dcnv3: dilation_h/dilation_w must be positive");
  TORCH_CHECK(pad_h >= 0 && pad_w >= 0, "dcnv3: pad_h/pad_w must be >= 0");
  TORCH_CHECK(group > 0 && group_channels > 0, "dcnv3: group/group_channels must be positive");
  TORCH_CHECK(!remove_center || kernel_h * kernel_w > 1,
              "dcnv3: remove_center needs more than one kernel point");
  TORCH_CHECK(offset.device() == input.device() && mask.device() == input.device(),
              "dcnv3: input, offset and mask must be on the same device");
  TORCH_CHECK(offset.scalar_type() == input.scalar_type() &&
                  mask.scalar_type() == input.scalar_type(),
              "dcnv3: input, offset and mask must have the same dtype");
  Dcnv3Params p{};
  p.batch = input.size(0);
  p.height_in = input.size(1);
  p.width_in = input.size(2);
  p.channels = input.size(3);
  TORCH_CHECK(p.channels == group * group_channels, "dcnv3: input has ", p.channels,
              " channels but group * group_channels = ", group * group_channels);
  p.kernel_h = kernel_h;
  p.kernel_w = kernel_w;
  p.stride_h = stride_h;
  p.stride_w = stride_w;
  p.pad_h = pad_h;
  p.pad_w = pad_w;
  p.dilation_h = dilation_h;
  p.dilation_w = dilation_w;
  p.group = group;
  p.group_channels = group_channels;
  p.offset_scale = offset_scale;
  p.remove_center = remove_center;
  p.points = kernel_h * kernel_w - (remove_center ? 1 : 0);
  p.height_out = (p.height_in + 2 * pad_h - (dilation_h * (kernel_h - 1) + 1)) / stride_h + 1;
  p.width_out = (p.width_in + 2 * pad_w - (dilation_w * (kernel_w - 1) + 1)) / stride_w + 1;
  TORCH_CHECK(p.height_out > 0 && p.width_out > 0, "dcnv3: input too small, output would be ",
              p.height_out, "x", p.width_out);
  TORCH_CHECK(offset.size(0) == p.batch && offset.size(1) == p.height_out &&
                  offset.size(2) == p.width_out && offset.size(3) == group * p.points * 2,
              "dcnv3: offset must have shape (", p.batch, ", ", p.height_out, ", ", p.width_out,
              ", ", group * p.points * 2, "), got ", offset.sizes());
  TORCH_CHECK(mask.size(0) == p.batch && mask.size(1) == p.height_out &&
                  mask.size(2) == p.width_out && mask.size(3) == group * p.points,
              "dcnv3: mask must have shape (", p.batch, ", ", p.height_out, ", ", p.width_out,
              ", ", group * p.points, "), got ", mask.sizes());
  return p;
}

void check_grad_output(const at::Tensor& grad_output, const at::Tensor& input,
                       const Dcnv3Params& p) {
  TORCH_CHECK(grad_output.device() == input.device() &&
                  grad_output.scalar_type() == input.scalar_type(),
              "dcnv3: grad_output must match input's device and dtype");
  TORCH_CHECK(grad_output.dim() == 4 && grad_output.size(0) == p.batch &&
                  grad_output.size(1) == p.height_out && grad_output.size(2) == p.width_out &&
                  grad_output.size(3) == p.channels,
              "dcnv3: grad_output must have the output's shape, got ", grad_output.sizes());
}

}  // namespace dcnv3

TORCH_LIBRARY(dcnv3, m) {
  m.def(
      "dcnv3_forward(Tensor input, Tensor offset, Tensor mask, int kernel_h, int kernel_w, "
      "int stride_h, int stride_w, int pad_h, int pad_w, int dilation_h, int dilation_w, "
      "int group, int group_channels, float offset_scale, bool remove_center) -> Tensor");
  m.def(
      "dcnv3_backward(Tensor grad_output, Tensor input, Tensor offset, Tensor mask, int kernel_h, "
      "int kernel_w, int stride_h, int stride_w, int pad_h, int pad_w, int dilation_h, "
      "int dilation_w, int group, int group_channels, float offset_scale, bool remove_center) "
      "-> (Tensor, Tensor, Tensor)");
  // Straightforward one-thread-per-channel CUDA forward (upstream's design): benchmark baseline only.
  m.def(
      "_dcnv3_forward_naive(Tensor input, Tensor offset, Tensor mask, int kernel_h, int kernel_w, "
      "int stride_h, int stride_w, int pad_h, int pad_w, int dilation_h, int dilation_w, "
      "int group, int group_channels, float offset_scale, bool remove_center) -> Tensor");
  // Which CPU instruction-set variant the CPU kernel dispatches to ("avx512", "avx2", "default").
  m.def("_cpu_isa() -> str", [] { return dcnv3::cpu::selected_isa_name(); });
}
