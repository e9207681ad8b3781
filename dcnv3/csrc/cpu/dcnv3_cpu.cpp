// CPU entry points: argument checks, output allocation, and run-time choice of the ISA variant.
#include <cstdlib>
#include <string>

#include <ATen/ops/empty.h>
#include <ATen/ops/zeros.h>
#include <ATen/ops/zeros_like.h>
#include <torch/library.h>

#include "dcnv3_cpu.h"

namespace dcnv3::cpu {
namespace {

bool cpu_supports(const std::string& isa) {
#if defined(__x86_64__) || defined(_M_X64)
  if (isa == "avx512") {
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
           __builtin_cpu_supports("fma");
  }
  if (isa == "avx2") return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif
  return isa == "default";
}

std::string choose_isa() {
  // DCNV3_CPU_ISA forces a variant (tests and benchmarks compare them); ignored if unsupported.
  if (const char* forced = std::getenv("DCNV3_CPU_ISA")) {
    const std::string isa(forced);
    if ((isa == "avx512" || isa == "avx2" || isa == "default") && cpu_supports(isa)) return isa;
    TORCH_WARN("dcnv3: DCNV3_CPU_ISA=", isa, " is not available on this CPU; choosing automatically");
  }
#if defined(DCNV3_HAS_X86_VARIANTS)
  if (cpu_supports("avx512")) return "avx512";
  if (cpu_supports("avx2")) return "avx2";
#endif
  return "default";
}

const KernelTable& table() {
  static const KernelTable t = [] {
    const std::string isa = selected_isa_name();
#if defined(DCNV3_HAS_X86_VARIANTS)
    if (isa == "avx512") return avx512::kernel_table();
    if (isa == "avx2") return avx2::kernel_table();
#endif
    return baseline::kernel_table();
  }();
  return t;
}

void check_cpu(const at::Tensor& t, const char* name) {
  TORCH_CHECK(t.device().is_cpu(), "dcnv3: ", name, " must be a CPU tensor for the CPU kernel");
}

at::Tensor forward_cpu(const at::Tensor& input, const at::Tensor& offset, const at::Tensor& mask,
                       int64_t kernel_h, int64_t kernel_w, int64_t stride_h, int64_t stride_w,
                       int64_t pad_h, int64_t pad_w, int64_t dilation_h, int64_t dilation_w,
                       int64_t group, int64_t group_channels, double offset_scale,
                       bool remove_center) {
  const Dcnv3Params p = make_params(input, offset, mask, kernel_h, kernel_w, stride_h, stride_w,
                                    pad_h, pad_w, dilation_h, dilation_w, group, group_channels,
                                    offset_scale, remove_center);
  check_cpu(input, "input");
  const at::Tensor x = input.contiguous(), off = offset.contiguous(), msk = mask.contiguous();
  at::Tensor output = at::empty({p.batch, p.height_out, p.width_out, p.channels}, x.options());
  if (output.numel() == 0) return output;
  table().forward(p, x, off, msk, output);
  return output;
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> backward_cpu(
    const at::Tensor& grad_output, const at::Tensor& input, const at::Tensor& offset,
    const at::Tensor& mask, int64_t kernel_h, int64_t kernel_w, int64_t stride_h, int64_t stride_w,
    int64_t pad_h, int64_t pad_w, int64_t dilation_h, int64_t dilation_w, int64_t group,
    int64_t group_channels, double offset_scale, bool remove_center) {
  const Dcnv3Params p = make_params(input, offset, mask, kernel_h, kernel_w, stride_h, stride_w,
                                    pad_h, pad_w, dilation_h, dilation_w, group, group_channels,
                                    offset_scale, remove_center);
  check_cpu(input, "input");
  check_grad_output(grad_output, input, p);
  const at::Tensor go = grad_output.contiguous(), x = input.contiguous(),
                   off = offset.contiguous(), msk = mask.contiguous();
  at::Tensor grad_input = at::zeros_like(x);
  at::Tensor grad_offset = at::zeros_like(off);
  at::Tensor grad_mask = at::zeros_like(msk);
  if (go.numel() == 0) return {grad_input, grad_offset, grad_mask};
  table().backward(p, go, x, off, msk, grad_input, grad_offset, grad_mask);
  return {grad_input, grad_offset, grad_mask};
}

}  // namespace

std::string selected_isa_name() {
  static const std::string isa = choose_isa();
  return isa;
}

}  // namespace dcnv3::cpu

TORCH_LIBRARY_IMPL(dcnv3, CPU, m) {
  m.impl("dcnv3_forward", &dcnv3::cpu::forward_cpu);
  m.impl("dcnv3_backward", &dcnv3::cpu::backward_cpu);
}
