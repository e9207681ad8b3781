// DCNv3 CPU kernels. This header is compiled once per instruction-set variant (see
// dcnv3_cpu_{avx512,avx2,default}.cpp), each inside its own namespace DCNV3_ISA_NS, so one wheel
// runs at full speed on any x86-64 without -march=native: the channel loops below are plain C++
// that the compiler vectorises for the variant's ISA.
//
// Design (forward): for each output pixel and group, the bilinear corners of all sampling points are
// computed once -- element offset of the corner pixel plus weight with the mask folded in, corners
// outside the image dropped -- and then reused for every channel of the group: the channel loop is a
// sequence of contiguous axpy's into register-resident accumulators.
//
// Backward: per point, 4 dot products (grad_output . corner values) give grad_mask and grad_offset;
// 4 axpy's scatter into grad_input. grad_offset/grad_mask belong to the output pixel (no race);
// grad_input is written either to the thread's own batch image (parallel over N) or to a per-thread
// buffer reduced at the end -- never with atomics.
#pragma once

#ifndef DCNV3_ISA_NS
#error "define DCNV3_ISA_NS before including dcnv3_cpu_kernel.h"
#endif

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <type_traits>
#include <vector>

#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/zeros.h>
#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>

#include "dcnv3_cpu.h"

namespace dcnv3::cpu::DCNV3_ISA_NS {
namespace {

// Accumulation type: float for float and the 16-bit types, double for double.
template <typename T>
using acc_t = std::conditional_t<std::is_same_v<T, double>, double, float>;

// One bilinear corner of one sampling point, mask folded into the weight.
template <typename A>
struct Tap {
  int64_t pixel;  // element offset of the corner pixel (y * W + x) * C in the batch image
  A weight;
};

// Full description of one sampling point, as needed by the backward pass.
template <typename A>
struct Point {
  int64_t pixel[4];  // corners (y0,x0), (y0,x1), (y1,x0), (y1,x1); -1 when outside the image
  A bilinear[4];     // bilinear weights of those corners (without the mask)
  A lh, lw;          // fractional parts of the sampling location
  bool inside;       // -1 < loc < size in both dimensions
};

// Regular-grid offsets (relative to the kernel centre) of every point, in point order.
template <typename A>
void make_grid(const Dcnv3Params& p, std::vector<A>& gx, std::vector<A>& gy) {
  const int64_t half_w = (p.dilation_w * (p.kernel_w - 1)) / 2;
  const int64_t half_h = (p.dilation_h * (p.kernel_h - 1)) / 2;
  gx.clear();
  gy.clear();
  for (int64_t i = 0; i < p.kernel_w; ++i) {
    for (int64_t j = 0; j < p.kernel_h; ++j) {
      if (p.remove_center && i == p.kernel_w / 2 && j == p.kernel_h / 2) continue;
      gx.push_back(static_cast<A>(i * p.dilation_w - half_w));
      gy.push_back(static_cast<A>(j * p.dilation_h - half_h));
    }
  }
}

// Locates one sampling point; returns false when it lies outside (-1, H) x (-1, W).
template <typename A>
inline bool locate(A loc_h, A loc_w, int64_t height, int64_t width, int64_t channels,
                   Point<A>& pt) {
  pt.inside = loc_h > A(-1) && loc_w > A(-1) && loc_h < A(height) && loc_w < A(width);
  if (!pt.inside) return false;
  const A fh = std::floor(loc_h), fw = std::floor(loc_w);
  const int64_t h0 = static_cast<int64_t>(fh), w0 = static_cast<int64_t>(fw);
  pt.lh = loc_h - fh;
  pt.lw = loc_w - fw;
  const A hh = A(1) - pt.lh, hw = A(1) - pt.lw;
  const bool y0 = h0 >= 0, y1 = h0 + 1 <= height - 1, x0 = w0 >= 0, x1 = w0 + 1 <= width - 1;
  const int64_t base = (h0 * width + w0) * channels;
  pt.pixel[0] = (y0 && x0) ? base : -1;
  pt.pixel[1] = (y0 && x1) ? base + channels : -1;
  pt.pixel[2] = (y1 && x0) ? base + width * channels : -1;
  pt.pixel[3] = (y1 && x1) ? base + (width + 1) * channels : -1;
  pt.bilinear[0] = hh * hw;
  pt.bilinear[1] = hh * pt.lw;
  pt.bilinear[2] = pt.lh * hw;
  pt.bilinear[3] = pt.lh * pt.lw;
  return true;
}

template <typename T, typename A>
inline A load(const T* ptr) {
  return static_cast<A>(*ptr);
}

// acc[0:B] = sum over taps of weight * src[tap.pixel + 0:B], with B known at compile time so the
// accumulators live in vector registers.
template <int B, typename T, typename A>
inline void gather_block(const T* __restrict src, const Tap<A>* __restrict taps, int64_t ntaps,
                         T* __restrict dst) {
  A acc[B];
  for (int c = 0; c < B; ++c) acc[c] = A(0);
  for (int64_t t = 0; t < ntaps; ++t) {
    const T* __restrict s = src + taps[t].pixel;
    const A w = taps[t].weight;
    for (int c = 0; c < B; ++c) acc[c] += w * static_cast<A>(s[c]);
  }
  for (int c = 0; c < B; ++c) dst[c] = static_cast<T>(acc[c]);
}

template <typename T, typename A>
inline void gather_tail(const T* __restrict src, const Tap<A>* __restrict taps, int64_t ntaps,
                        T* __restrict dst, int64_t len) {
  for (int64_t c = 0; c < len; ++c) {
    A acc = A(0);
    for (int64_t t = 0; t < ntaps; ++t) acc += taps[t].weight * static_cast<A>(src[taps[t].pixel + c]);
    dst[c] = static_cast<T>(acc);
  }
}

// Channel block size: 64 bytes of accumulators for the common group widths, a tail loop otherwise.
template <typename T, typename A>
inline void gather_channels(const T* src, const Tap<A>* taps, int64_t ntaps, T* dst, int64_t cg) {
  int64_t c = 0;
  if constexpr (std::is_same_v<A, float>) {
    for (; c + 32 <= cg; c += 32) gather_block<32>(src + c, taps, ntaps, dst + c);
  }
  for (; c + 16 <= cg; c += 16) gather_block<16>(src + c, taps, ntaps, dst + c);
  for (; c + 8 <= cg; c += 8) gather_block<8>(src + c, taps, ntaps, dst + c);
  if (c < cg) gather_tail(src + c, taps, ntaps, dst + c, cg - c);
}

template <typename T>
void forward_impl(const Dcnv3Params& p, const at::Tensor& input, const at::Tensor& offset,
                  const at::Tensor& mask, at::Tensor& output) {
  using A = acc_t<T>;
  const T* in = input.const_data_ptr<T>();
  const T* off = offset.const_data_ptr<T>();
  const T* msk = mask.const_data_ptr<T>();
  T* out = output.mutable_data_ptr<T>();
  std::vector<A> gx, gy;
  make_grid(p, gx, gy);
  const int64_t H = p.height_in, W = p.width_in, C = p.channels, G = p.group, P = p.points,
                Cg = p.group_channels, Ho = p.height_out, Wo = p.width_out;
  const A scale = static_cast<A>(p.offset_scale);
  const int64_t half_w = (p.dilation_w * (p.kernel_w - 1)) / 2;
  const int64_t half_h = (p.dilation_h * (p.kernel_h - 1)) / 2;
  const int64_t image = H * W * C;
  // Rows of N*Ho; a chunk should hold enough work to amortise thread start-up (~30k FMAs).
  const int64_t row_work = std::max<int64_t>(1, Wo * C * P * 4);
  const int64_t grain = std::max<int64_t>(1, 32768 / row_work);
  at::parallel_for(0, p.batch * Ho, grain, [&](int64_t begin, int64_t end) {
    std::vector<Tap<A>> taps(static_cast<size_t>(P * 4));
    Point<A> pt;
    for (int64_t row = begin; row < end; ++row) {
      const int64_t n = row / Ho, ho = row % Ho;
      const T* in_n = in + n * image;
      const A p0_h = static_cast<A>(half_h - p.pad_h + ho * p.stride_h);
      for (int64_t wo = 0; wo < Wo; ++wo) {
        const int64_t pix = row * Wo + wo;
        const A p0_w = static_cast<A>(half_w - p.pad_w + wo * p.stride_w);
        const T* off_pix = off + pix * G * P * 2;
        const T* msk_pix = msk + pix * G * P;
        T* out_pix = out + pix * C;
        for (int64_t g = 0; g < G; ++g) {
          int64_t ntaps = 0;
          for (int64_t k = 0; k < P; ++k) {
            const A dx = static_cast<A>(off_pix[(g * P + k) * 2]);
            const A dy = static_cast<A>(off_pix[(g * P + k) * 2 + 1]);
            const A loc_w = p0_w + (gx[k] + dx) * scale;
            const A loc_h = p0_h + (gy[k] + dy) * scale;
            if (!locate(loc_h, loc_w, H, W, C, pt)) continue;
            const A m = static_cast<A>(msk_pix[g * P + k]);
            for (int q = 0; q < 4; ++q) {
              if (pt.pixel[q] >= 0) taps[ntaps++] = Tap<A>{pt.pixel[q], pt.bilinear[q] * m};
            }
          }
          gather_channels<T, A>(in_n + g * Cg, taps.data(), ntaps, out_pix + g * Cg, Cg);
        }
      }
    }
  });
}

// Backward for one output row. grad_in_n: accumulation target (type A) for this batch image.
template <typename T>
inline void backward_row(const Dcnv3Params& p, int64_t row, const T* go, const T* in,
                         const T* off, const T* msk, acc_t<T>* grad_in_n, T* goff, T* gmsk,
                         const std::vector<acc_t<T>>& gx, const std::vector<acc_t<T>>& gy,
                         std::vector<acc_t<T>>& go_buf) {
  using A = acc_t<T>;
  const int64_t H = p.height_in, W = p.width_in, C = p.channels, G = p.group, P = p.points,
                Cg = p.group_channels, Ho = p.height_out, Wo = p.width_out;
  const A scale = static_cast<A>(p.offset_scale);
  const int64_t half_w = (p.dilation_w * (p.kernel_w - 1)) / 2;
  const int64_t half_h = (p.dilation_h * (p.kernel_h - 1)) / 2;
  const int64_t n = row / Ho, ho = row % Ho;
  const T* in_n = in + n * H * W * C;
  const A p0_h = static_cast<A>(half_h - p.pad_h + ho * p.stride_h);
  Point<A> pt;
  A* __restrict gob = go_buf.data();
  for (int64_t wo = 0; wo < Wo; ++wo) {
    const int64_t pix = row * Wo + wo;
    const A p0_w = static_cast<A>(half_w - p.pad_w + wo * p.stride_w);
    for (int64_t g = 0; g < G; ++g) {
      const T* go_g = go + pix * C + g * Cg;
      for (int64_t c = 0; c < Cg; ++c) gob[c] = static_cast<A>(go_g[c]);
      const T* in_g = in_n + g * Cg;
      A* gin_g = grad_in_n + g * Cg;
      for (int64_t k = 0; k < P; ++k) {
        const int64_t idx = (pix * G + g) * P + k;
        const A dx = static_cast<A>(off[idx * 2]);
        const A dy = static_cast<A>(off[idx * 2 + 1]);
        const A loc_w = p0_w + (gx[k] + dx) * scale;
        const A loc_h = p0_h + (gy[k] + dy) * scale;
        if (!locate(loc_h, loc_w, H, W, C, pt)) {
          goff[idx * 2] = T(0);
          goff[idx * 2 + 1] = T(0);
          gmsk[idx] = T(0);
          continue;
        }
        const A m = static_cast<A>(msk[idx]);
        A dot[4] = {A(0), A(0), A(0), A(0)};
        for (int q = 0; q < 4; ++q) {
          if (pt.pixel[q] < 0) continue;
          const T* __restrict v = in_g + pt.pixel[q];
          A* __restrict gi = gin_g + pt.pixel[q];
          const A w = pt.bilinear[q] * m;
          A d = A(0);
          for (int64_t c = 0; c < Cg; ++c) {
            d += gob[c] * static_cast<A>(v[c]);
            gi[c] += w * gob[c];
          }
          dot[q] = d;
        }
        const A hh = A(1) - pt.lh, hw = A(1) - pt.lw;
        gmsk[idx] = static_cast<T>(pt.bilinear[0] * dot[0] + pt.bilinear[1] * dot[1] +
                                   pt.bilinear[2] * dot[2] + pt.bilinear[3] * dot[3]);
        const A ms = m * scale;
        goff[idx * 2] = static_cast<T>(ms * (hh * (dot[1] - dot[0]) + pt.lh * (dot[3] - dot[2])));
        goff[idx * 2 + 1] = static_cast<T>(ms * (hw * (dot[2] - dot[0]) + pt.lw * (dot[3] - dot[1])));
      }
    }
  }
}

template <typename T>
void backward_impl(const Dcnv3Params& p, const at::Tensor& grad_output, const at::Tensor& input,
                   const at::Tensor& offset, const at::Tensor& mask, at::Tensor& grad_input,
                   at::Tensor& grad_offset, at::Tensor& grad_mask) {
  using A = acc_t<T>;
  const T* go = grad_output.const_data_ptr<T>();
  const T* in = input.const_data_ptr<T>();
  const T* off = offset.const_data_ptr<T>();
  const T* msk = mask.const_data_ptr<T>();
  T* goff = grad_offset.mutable_data_ptr<T>();
  T* gmsk = grad_mask.mutable_data_ptr<T>();
  std::vector<A> gx, gy;
  make_grid(p, gx, gy);
  const int64_t image = p.height_in * p.width_in * p.channels;
  const int64_t rows = p.batch * p.height_out;
  const int64_t threads = at::in_parallel_region() ? 1 : at::get_num_threads();
  const int64_t row_work = std::max<int64_t>(1, p.width_out * p.channels * p.points * 8);
  const int64_t grain = std::max<int64_t>(1, 32768 / row_work);
  constexpr bool direct = std::is_same_v<T, A>;

  if (threads <= 1 || p.batch >= threads) {
    // Each thread owns whole batch images: grad_input is written without any synchronisation.
    at::Tensor acc = direct ? grad_input : at::zeros(grad_input.sizes(), grad_input.options().dtype(
                                                         c10::CppTypeToScalarType<A>::value));
    A* gin = acc.mutable_data_ptr<A>();
    at::parallel_for(0, p.batch, 1, [&](int64_t begin, int64_t end) {
      std::vector<A> go_buf(static_cast<size_t>(p.group_channels));
      for (int64_t n = begin; n < end; ++n) {
        for (int64_t ho = 0; ho < p.height_out; ++ho) {
          backward_row<T>(p, n * p.height_out + ho, go, in, off, msk, gin + n * image, goff, gmsk,
                          gx, gy, go_buf);
        }
      }
    });
    if (!direct) grad_input.copy_(acc);
    return;
  }

  // Fewer images than threads: split rows, each thread scatters into its own buffer, then reduce.
  at::Tensor buffers = at::zeros({threads, grad_input.numel()},
                                 grad_input.options().dtype(c10::CppTypeToScalarType<A>::value));
  A* buf = buffers.mutable_data_ptr<A>();
  at::parallel_for(0, rows, grain, [&](int64_t begin, int64_t end) {
    const int64_t tid = at::get_thread_num();
    TORCH_CHECK(tid < threads, "dcnv3: unexpected thread id ", tid);
    A* mine = buf + tid * grad_input.numel();
    std::vector<A> go_buf(static_cast<size_t>(p.group_channels));
    for (int64_t row = begin; row < end; ++row) {
      const int64_t n = row / p.height_out;
      backward_row<T>(p, row, go, in, off, msk, mine + n * image, goff, gmsk, gx, gy, go_buf);
    }
  });
  T* gin = grad_input.mutable_data_ptr<T>();
  const int64_t total = grad_input.numel();
  at::parallel_for(0, total, 16384, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      A s = A(0);
      for (int64_t t = 0; t < threads; ++t) s += buf[t * total + i];
      gin[i] = static_cast<T>(s);
    }
  });
}

void forward(const Dcnv3Params& p, const at::Tensor& input, const at::Tensor& offset,
             const at::Tensor& mask, at::Tensor& output) {
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, input.scalar_type(), "dcnv3_forward_cpu",
                                  [&] { forward_impl<scalar_t>(p, input, offset, mask, output); });
}

void backward(const Dcnv3Params& p, const at::Tensor& grad_output, const at::Tensor& input,
              const at::Tensor& offset, const at::Tensor& mask, at::Tensor& grad_input,
              at::Tensor& grad_offset, at::Tensor& grad_mask) {
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, input.scalar_type(),
                                  "dcnv3_backward_cpu", [&] {
                                    backward_impl<scalar_t>(p, grad_output, input, offset, mask,
                                                            grad_input, grad_offset, grad_mask);
                                  });
}

}  // namespace

KernelTable kernel_table() { return KernelTable{&forward, &backward}; }

}  // namespace dcnv3::cpu::DCNV3_ISA_NS
