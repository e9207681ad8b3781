// CPU kernels: one set of functions per instruction-set variant, chosen at run time.
#pragma once

#include <string>

#include "../dcnv3_params.h"

namespace dcnv3::cpu {

// The kernels a variant provides. `grad_input_acc` buffers are described in dcnv3_cpu.cpp.
struct KernelTable {
  void (*forward)(const Dcnv3Params& p, const at::Tensor& input, const at::Tensor& offset,
                  const at::Tensor& mask, at::Tensor& output);
  void (*backward)(const Dcnv3Params& p, const at::Tensor& grad_output, const at::Tensor& input,
                   const at::Tensor& offset, const at::Tensor& mask, at::Tensor& grad_input,
                   at::Tensor& grad_offset, at::Tensor& grad_mask);
};

// Defined once per variant (dcnv3_cpu_{avx512,avx2,default}.cpp).
namespace avx512 { KernelTable kernel_table(); }
namespace avx2 { KernelTable kernel_table(); }
namespace baseline { KernelTable kernel_table(); }

// "avx512", "avx2" or "default": best variant this CPU supports, or DCNV3_CPU_ISA if set (and supported).
std::string selected_isa_name();

}  // namespace dcnv3::cpu
