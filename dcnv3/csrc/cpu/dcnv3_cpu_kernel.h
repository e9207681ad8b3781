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

// Corners of all group*points sampling points of one output pixel, as structure-of-arrays so that
// locating them vectorises across points (the per-point index/weight arithmetic, not the channel
// loop, dominates when group_channels is small: 16 in InternImage).
template <typename A>
struct PixelCorners {
  // Element offset (y * W + x) * C of corners (y0,x0) (y0,x1) (y1,x0) (y1,x1): precomputed here, in
  // the vectorised loop, so the channel loops do no index arithmetic.
  std::vector<int64_t> idx[4];
  std::vector<A> wt[4];         // bilinear weight of each corner (mask folded in for the forward)
  std::vector<A> frac_h, frac_w, mask, inside;  // backward only
  PixelCorners(int64_t n, bool backward) {
    for (int q = 0; q < 4; ++q) {
      idx[q].resize(static_cast<size_t>(n));
      wt[q].resize(static_cast<size_t>(n));
    }
    if (backward) {
      frac_h.resize(static_cast<size_t>(n));
      frac_w.resize(static_cast<size_t>(n));
      mask.resize(static_cast<size_t>(n));
      inside.resize(static_cast<size_t>(n));
    }
  }
};

// Regular-grid offsets (relative to the kernel centre) of every point, tiled over the groups so the
// locate loop runs over group*points without an inner index computation.
template <typename A>
void make_grid(const Dcnv3Params& p, std::vector<A>& gx, std::vector<A>& gy) {
  const int64_t half_w = (p.dilation_w * (p.kernel_w - 1)) / 2;
  const int64_t half_h = (p.dilation_h * (p.kernel_h - 1)) / 2;
  gx.clear();
  gy.clear();
  for (int64_t g = 0; g < p.group; ++g) {
    for (int64_t i = 0; i < p.kernel_w; ++i) {
      for (int64_t j = 0; j < p.kernel_h; ++j) {
        if (p.remove_center && i == p.kernel_w / 2 && j == p.kernel_h / 2) continue;
        gx.push_back(static_cast<A>(i * p.dilation_w - half_w));
        gy.push_back(static_cast<A>(j * p.dilation_h - half_h));
      }
    }
  }
}

// Locates the group*points sampling points of one output pixel. Branch-free so it vectorises.
// Forward (kBackward=false): corners outside the image get weight 0 and index 0 (a valid address),
// so the channel loop needs no test; the mask is folded into the weights.
// Backward: corners outside get index -1 (their value is needed as exactly 0 in the derivative);
// weights are plain bilinear weights; fractional parts, mask and the inside flag are kept.
template <bool kBackward, typename T, typename A>
inline void locate_pixel(int64_t n, const T* __restrict off, const T* __restrict msk,
                         const A* __restrict gx, const A* __restrict gy, A p0_w, A p0_h, A scale,
                         int32_t height, int32_t width, int64_t channels, PixelCorners<A>& pc) {
  int64_t* __restrict i0 = pc.idx[0].data();
  int64_t* __restrict i1 = pc.idx[1].data();
  int64_t* __restrict i2 = pc.idx[2].data();
  int64_t* __restrict i3 = pc.idx[3].data();
  A* __restrict w0 = pc.wt[0].data();
  A* __restrict w1 = pc.wt[1].data();
  A* __restrict w2 = pc.wt[2].data();
  A* __restrict w3 = pc.wt[3].data();
  const A fh = static_cast<A>(height), fw = static_cast<A>(width);
  const int64_t invalid = kBackward ? -1 : 0;
  // The 8 output streams exceed GCC's default number of run-time alias checks; they never overlap.
#pragma GCC ivdep
  for (int64_t j = 0; j < n; ++j) {
    const A mask_value = static_cast<A>(msk[j]);  // loaded unconditionally (no branch in the loop)
    A loc_w = p0_w + (gx[j] + static_cast<A>(off[2 * j])) * scale;
    A loc_h = p0_h + (gy[j] + static_cast<A>(off[2 * j + 1])) * scale;
    const int32_t in = (loc_h > A(-1)) & (loc_w > A(-1)) & (loc_h < fh) & (loc_w < fw);
    // Points outside (-1, size) -- including NaN/inf offsets -- contribute nothing, exactly as in
    // upstream's CUDA kernel. Clamp so the integer conversion is defined and the weights finite:
    // std::max(-2, x) returns -2 for a NaN x (argument order matters), and a select on the location
    // (unlike this clamp) stops GCC 12 from vectorising the loop. The mask is selected to 0, since a
    // NaN mask times 0 would still be NaN.
    loc_h = std::min(std::max(A(-2), loc_h), fh + A(1));
    loc_w = std::min(std::max(A(-2), loc_w), fw + A(1));
    int32_t h0 = static_cast<int32_t>(loc_h);
    h0 -= static_cast<A>(h0) > loc_h;  // floor for negative values
    int32_t x0 = static_cast<int32_t>(loc_w);
    x0 -= static_cast<A>(x0) > loc_w;
    const A lh = loc_h - static_cast<A>(h0), lw = loc_w - static_cast<A>(x0);
    const A hh = A(1) - lh, hw = A(1) - lw;
    const A m = in ? mask_value : A(0);
    const A scale_w = kBackward ? A(1) : m;
    // int32_t, not bool, flags: GCC 12 finds no vector type for bool in this loop.
    const int32_t y0 = in & (h0 >= 0), y1 = in & (h0 + 1 < height);
    const int32_t xa = x0 >= 0, xb = x0 + 1 < width;
    const int32_t c0 = y0 & xa, c1 = y0 & xb, c2 = y1 & xa, c3 = y1 & xb;
    const int64_t base = static_cast<int64_t>(h0 * width + x0) * channels;
    const int64_t row = static_cast<int64_t>(width) * channels;
    i0[j] = c0 ? base : invalid;
    i1[j] = c1 ? base + channels : invalid;
    i2[j] = c2 ? base + row : invalid;
    i3[j] = c3 ? base + row + channels : invalid;
    // All factors are finite here (clamped location, mask selected to 0 outside), so multiplying by
    // the 0/1 flag is exact; it vectorises better than a select.
    w0[j] = hh * hw * scale_w * static_cast<A>(c0);
    w1[j] = hh * lw * scale_w * static_cast<A>(c1);
    w2[j] = lh * hw * scale_w * static_cast<A>(c2);
    w3[j] = lh * lw * scale_w * static_cast<A>(c3);
    const A in_f = in ? A(1) : A(0);
    if constexpr (kBackward) {
      pc.frac_h[j] = lh;
      pc.frac_w[j] = lw;
      pc.mask[j] = m;
      pc.inside[j] = in_f;
    }
  }
}

// dst[0:B] = sum over the group's points and corners of weight * src[corner][0:B]; B is a
// compile-time constant so the accumulators stay in vector registers. One accumulator set per corner
// (two when B is large): with a single chain the 36 dependent FMAs of a 3x3 group are bound by FMA
// latency, not throughput.
template <int B, typename T, typename A>
inline void gather_block(const T* __restrict src, const PixelCorners<A>& pc, int64_t first,
                         int64_t points, T* __restrict dst) {
  constexpr int kSets = B * sizeof(A) > 64 ? 2 : 4;
  const int64_t* __restrict i0 = pc.idx[0].data() + first;
  const int64_t* __restrict i1 = pc.idx[1].data() + first;
  const int64_t* __restrict i2 = pc.idx[2].data() + first;
  const int64_t* __restrict i3 = pc.idx[3].data() + first;
  const A* __restrict w0 = pc.wt[0].data() + first;
  const A* __restrict w1 = pc.wt[1].data() + first;
  const A* __restrict w2 = pc.wt[2].data() + first;
  const A* __restrict w3 = pc.wt[3].data() + first;
  A acc[kSets][B];
  for (int k = 0; k < kSets; ++k) {
    for (int c = 0; c < B; ++c) acc[k][c] = A(0);
  }
  for (int64_t j = 0; j < points; ++j) {
    const T* __restrict s0 = src + i0[j];
    const T* __restrict s1 = src + i1[j];
    const T* __restrict s2 = src + i2[j];
    const T* __restrict s3 = src + i3[j];
    const A a0 = w0[j], a1 = w1[j], a2 = w2[j], a3 = w3[j];
    for (int c = 0; c < B; ++c) {
      acc[0][c] += a0 * static_cast<A>(s0[c]);
      acc[1][c] += a1 * static_cast<A>(s1[c]);
      acc[kSets == 4 ? 2 : 0][c] += a2 * static_cast<A>(s2[c]);
      acc[kSets == 4 ? 3 : 1][c] += a3 * static_cast<A>(s3[c]);
    }
  }
  for (int c = 0; c < B; ++c) {
    A total = acc[0][c] + acc[1][c];
    if constexpr (kSets == 4) total += acc[2][c] + acc[3][c];
    dst[c] = static_cast<T>(total);
  }
}

template <typename T, typename A>
inline void gather_tail(const T* __restrict src, int64_t channels, const PixelCorners<A>& pc,
                        int64_t first, int64_t points, T* __restrict dst, int64_t len) {
  for (int64_t c = 0; c < len; ++c) {
    A acc = A(0);
    for (int64_t j = first; j < first + points; ++j) {
      for (int q = 0; q < 4; ++q) {
        acc += pc.wt[q][j] * static_cast<A>(src[pc.idx[q][j] + c]);
      }
    }
    dst[c] = static_cast<T>(acc);
  }
}

// Channel blocks of 64 bytes of accumulators for the common group widths, a tail loop otherwise.
template <typename T, typename A>
inline void gather_channels(const T* src, int64_t channels, const PixelCorners<A>& pc,
                            int64_t first, int64_t points, T* dst, int64_t cg) {
  int64_t c = 0;
  if constexpr (std::is_same_v<A, float>) {
    for (; c + 32 <= cg; c += 32) gather_block<32>(src + c, pc, first, points, dst + c);
  }
  for (; c + 16 <= cg; c += 16) gather_block<16>(src + c, pc, first, points, dst + c);
  for (; c + 8 <= cg; c += 8) gather_block<8>(src + c, pc, first, points, dst + c);
  if (c < cg) gather_tail(src + c, channels, pc, first, points, dst + c, cg - c);
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
  const int64_t C = p.channels, G = p.group, P = p.points, Cg = p.group_channels,
                Ho = p.height_out, Wo = p.width_out, GP = G * P;
  const int32_t H = static_cast<int32_t>(p.height_in), W = static_cast<int32_t>(p.width_in);
  const A scale = static_cast<A>(p.offset_scale);
  const int64_t half_w = (p.dilation_w * (p.kernel_w - 1)) / 2;
  const int64_t half_h = (p.dilation_h * (p.kernel_h - 1)) / 2;
  const int64_t image = p.height_in * p.width_in * C;
  // Rows of N*Ho; a chunk should hold enough work to amortise thread start-up (~30k FMAs).
  const int64_t row_work = std::max<int64_t>(1, Wo * C * P * 4);
  const int64_t grain = std::max<int64_t>(1, 32768 / row_work);
  at::parallel_for(0, p.batch * Ho, grain, [&](int64_t begin, int64_t end) {
    PixelCorners<A> pc(GP, false);
    for (int64_t row = begin; row < end; ++row) {
      const int64_t n = row / Ho, ho = row % Ho;
      const T* in_n = in + n * image;
      const A p0_h = static_cast<A>(half_h - p.pad_h + ho * p.stride_h);
      for (int64_t wo = 0; wo < Wo; ++wo) {
        const int64_t pix = row * Wo + wo;
        const A p0_w = static_cast<A>(half_w - p.pad_w + wo * p.stride_w);
        locate_pixel<false>(GP, off + pix * GP * 2, msk + pix * GP, gx.data(), gy.data(), p0_w,
                            p0_h, scale, H, W, C, pc);
        T* out_pix = out + pix * C;
        for (int64_t g = 0; g < G; ++g) {
          gather_channels<T, A>(in_n + g * Cg, C, pc, g * P, P, out_pix + g * Cg, Cg);
        }
      }
    }
  });
}

// Per-thread scratch of the backward pass: out-of-image corners read `zeros` and scatter into
// `sink`, so the channel loop has no branches.
template <typename T, typename A>
struct BackwardScratch {
  std::vector<A> go;     // grad_output of the current (pixel, group), in A
  std::vector<T> zeros;  // stands in for the values of out-of-image corners
  std::vector<A> sink;   // receives their (discarded) grad_input
  explicit BackwardScratch(int64_t cg)
      : go(static_cast<size_t>(cg)), zeros(static_cast<size_t>(cg), T(0)),
        sink(static_cast<size_t>(cg)) {}
};

// One sampling point, channels [0, len): with s = sum_q w_q v_q the bilinear sample,
//   grad_mask   = go . s
//   grad_off_x  = m * scale * go . (hh (v1 - v0) + lh (v3 - v2))
//   grad_off_y  = m * scale * go . (hw (v2 - v0) + lw (v3 - v1))
//   grad_in[q] += w_q * m * go.
// Three dot products per point (not one per corner) keep the horizontal sums few. B > 0 is a
// compile-time block length (accumulators in registers); B == 0 means run-time `len`.
#if defined(__GNUC__) && !defined(__clang__)
// Let GCC reassociate the three channel reductions below into vector trees: in order, they are three
// chains of `group_channels` dependent scalar adds per point and dominate the backward.
#pragma GCC push_options
#pragma GCC optimize("associative-math", "no-signed-zeros", "no-trapping-math")
#endif
template <int B, typename T, typename A>
inline void backward_point(const T* const* __restrict v, A* const* __restrict g,
                           const A* __restrict go, const A* w, A m, A lh, A lw, int64_t len,
                           A& dot_s, A& dot_x, A& dot_y) {
  const int64_t n = B > 0 ? B : len;
  const T* __restrict v0 = v[0];
  const T* __restrict v1 = v[1];
  const T* __restrict v2 = v[2];
  const T* __restrict v3 = v[3];
  const A hh = A(1) - lh, hw = A(1) - lw;
  const A gw0 = w[0] * m, gw1 = w[1] * m, gw2 = w[2] * m, gw3 = w[3] * m;
  A s = A(0), x = A(0), y = A(0);
  for (int64_t c = 0; c < n; ++c) {
    const A a0 = static_cast<A>(v0[c]), a1 = static_cast<A>(v1[c]);
    const A a2 = static_cast<A>(v2[c]), a3 = static_cast<A>(v3[c]);
    const A gc = go[c];
    s += gc * (w[0] * a0 + w[1] * a1 + w[2] * a2 + w[3] * a3);
    x += gc * (hh * (a1 - a0) + lh * (a3 - a2));
    y += gc * (hw * (a2 - a0) + lw * (a3 - a1));
  }
  // Scatter after the reads: corners may alias each other (e.g. the sink), never the values.
  for (int q = 0; q < 4; ++q) {
    A* __restrict gq = g[q];
    const A gwq = q == 0 ? gw0 : q == 1 ? gw1 : q == 2 ? gw2 : gw3;
    for (int64_t c = 0; c < n; ++c) gq[c] += gwq * go[c];
  }
  dot_s += s;
  dot_x += x;
  dot_y += y;
}

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC pop_options
#endif

template <typename T, typename A>
inline void backward_point_channels(const T* const* v, A* const* g, const A* go, const A* w, A m,
                                    A lh, A lw, int64_t cg, A& dot_s, A& dot_x, A& dot_y) {
  if (cg == 16) {
    backward_point<16, T, A>(v, g, go, w, m, lh, lw, cg, dot_s, dot_x, dot_y);
  } else if (cg == 32) {
    backward_point<32, T, A>(v, g, go, w, m, lh, lw, cg, dot_s, dot_x, dot_y);
  } else if (cg == 8) {
    backward_point<8, T, A>(v, g, go, w, m, lh, lw, cg, dot_s, dot_x, dot_y);
  } else {
    backward_point<0, T, A>(v, g, go, w, m, lh, lw, cg, dot_s, dot_x, dot_y);
  }
}

// Backward for one output row. grad_in_n: accumulation target (type A) for this batch image.
template <typename T>
inline void backward_row(const Dcnv3Params& p, int64_t row, const T* go, const T* in,
                         const T* off, const T* msk, acc_t<T>* grad_in_n, T* goff, T* gmsk,
                         const std::vector<acc_t<T>>& gx, const std::vector<acc_t<T>>& gy,
                         PixelCorners<acc_t<T>>& pc, BackwardScratch<T, acc_t<T>>& scratch) {
  using A = acc_t<T>;
  const int64_t C = p.channels, G = p.group, P = p.points, Cg = p.group_channels,
                Ho = p.height_out, Wo = p.width_out, GP = G * P;
  const int32_t H = static_cast<int32_t>(p.height_in), W = static_cast<int32_t>(p.width_in);
  const A scale = static_cast<A>(p.offset_scale);
  const int64_t half_w = (p.dilation_w * (p.kernel_w - 1)) / 2;
  const int64_t half_h = (p.dilation_h * (p.kernel_h - 1)) / 2;
  const int64_t n = row / Ho, ho = row % Ho;
  const T* in_n = in + n * p.height_in * p.width_in * C;
  const A p0_h = static_cast<A>(half_h - p.pad_h + ho * p.stride_h);
  A* gob = scratch.go.data();
  for (int64_t wo = 0; wo < Wo; ++wo) {
    const int64_t pix = row * Wo + wo;
    const A p0_w = static_cast<A>(half_w - p.pad_w + wo * p.stride_w);
    locate_pixel<true>(GP, off + pix * GP * 2, msk + pix * GP, gx.data(), gy.data(), p0_w, p0_h,
                       scale, H, W, C, pc);
    T* goff_pix = goff + pix * GP * 2;
    T* gmsk_pix = gmsk + pix * GP;
    for (int64_t g = 0; g < G; ++g) {
      const T* go_g = go + pix * C + g * Cg;
      for (int64_t c = 0; c < Cg; ++c) gob[c] = static_cast<A>(go_g[c]);
      const T* in_g = in_n + g * Cg;
      A* gin_g = grad_in_n + g * Cg;
      for (int64_t j = g * P; j < (g + 1) * P; ++j) {
        if (pc.inside[j] == A(0)) continue;  // outputs were zero-initialised
        const T* v[4];
        A* gq[4];
        A w[4];
        for (int q = 0; q < 4; ++q) {
          const int64_t corner = pc.idx[q][j];
          v[q] = corner >= 0 ? in_g + corner : scratch.zeros.data();
          gq[q] = corner >= 0 ? gin_g + corner : scratch.sink.data();
          w[q] = pc.wt[q][j];
        }
        A dot_s = A(0), dot_x = A(0), dot_y = A(0);
        backward_point_channels<T, A>(v, gq, gob, w, pc.mask[j], pc.frac_h[j], pc.frac_w[j], Cg,
                                      dot_s, dot_x, dot_y);
        const A ms = pc.mask[j] * scale;
        gmsk_pix[j] = static_cast<T>(dot_s);
        goff_pix[2 * j] = static_cast<T>(ms * dot_x);
        goff_pix[2 * j + 1] = static_cast<T>(ms * dot_y);
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
      BackwardScratch<T, A> scratch(p.group_channels);
      PixelCorners<A> pc(p.group * p.points, true);
      for (int64_t n = begin; n < end; ++n) {
        for (int64_t ho = 0; ho < p.height_out; ++ho) {
          backward_row<T>(p, n * p.height_out + ho, go, in, off, msk, gin + n * image, goff, gmsk,
                          gx, gy, pc, scratch);
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
    BackwardScratch<T, A> scratch(p.group_channels);
    PixelCorners<A> pc(p.group * p.points, true);
    for (int64_t row = begin; row < end; ++row) {
      const int64_t n = row / p.height_out;
      backward_row<T>(p, row, go, in, off, msk, mine + n * image, goff, gmsk, gx, gy, pc, scratch);
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
