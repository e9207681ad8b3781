// DCNv3 CUDA kernels.
//
// Forward/backward follow the DCNv4 design rather than upstream's one-thread-per-channel kernels:
// a (pixel, group) pair is handled by Cg / D consecutive threads, each owning D contiguous channels
// that it reads with one vectorised load per corner (D = 16 bytes / sizeof(T) when the group width
// allows it). Sampling locations are computed once per thread for its D channels instead of once per
// channel. Accumulation is in at::opmath_type (float for half/bfloat16).
//
// Backward: grad_offset / grad_mask are sums over the channels of a group; the partial sums of the
// Cg / D threads of a group are combined with warp shuffles (segments of a power-of-two width <= 32),
// else with atomics. grad_input needs atomics (any output pixel may sample any input pixel); for
// 16-bit types it is accumulated in a float buffer and cast at the end.
//
// `_dcnv3_forward_naive` is the straightforward one-thread-per-channel kernel (upstream's design),
// kept only as the benchmark baseline.
// Only c10/cuda headers (not ATen/cuda/CUDAContext.h, which pulls in cuSPARSE/cuBLAS headers that a
// bare CUDA toolkit may lack).
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAStream.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/zeros.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include <cstdint>
#include <initializer_list>
#include <type_traits>

#include "../dcnv3_params.h"

namespace dcnv3::cuda {
namespace {

constexpr int kThreads = 256;

template <typename T, int D>
struct alignas(sizeof(T) * D) Vec {
  T v[D];
};

struct Geometry {
  int64_t height_in, width_in, channels, height_out, width_out;
  int kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, dilation_h, dilation_w;
  int group, group_channels, points, remove_center;
};

Geometry make_geometry(const Dcnv3Params& p) {
  return Geometry{p.height_in,  p.width_in,  p.channels,  p.height_out,  p.width_out,
                  (int)p.kernel_h, (int)p.kernel_w, (int)p.stride_h, (int)p.stride_w,
                  (int)p.pad_h, (int)p.pad_w, (int)p.dilation_h, (int)p.dilation_w,
                  (int)p.group, (int)p.group_channels, (int)p.points, p.remove_center ? 1 : 0};
}

// Regular-grid position (relative to the kernel centre) of point k in upstream order (x outer).
__device__ __forceinline__ void grid_point(const Geometry& g, int k, int& gx, int& gy) {
  if (g.remove_center && k >= (g.kernel_w / 2) * g.kernel_h + g.kernel_h / 2) ++k;
  const int i = k / g.kernel_h, j = k % g.kernel_h;
  gx = i * g.dilation_w - (g.dilation_w * (g.kernel_w - 1)) / 2;
  gy = j * g.dilation_h - (g.dilation_h * (g.kernel_h - 1)) / 2;
}

template <typename A>
struct Corners {
  int64_t pixel[4];  // element offset of (y*W + x)*C, -1 outside
  A w[4];            // bilinear weights
  A lh, lw;
};

template <typename A>
__device__ __forceinline__ bool locate(const Geometry& g, A loc_h, A loc_w, Corners<A>& c) {
  if (!(loc_h > A(-1) && loc_w > A(-1) && loc_h < A(g.height_in) && loc_w < A(g.width_in))) {
    return false;
  }
  const A fh = floor(loc_h), fw = floor(loc_w);
  const int64_t h0 = static_cast<int64_t>(fh), w0 = static_cast<int64_t>(fw);
  c.lh = loc_h - fh;
  c.lw = loc_w - fw;
  const A hh = A(1) - c.lh, hw = A(1) - c.lw;
  const bool y0 = h0 >= 0, y1 = h0 + 1 < g.height_in, x0 = w0 >= 0, x1 = w0 + 1 < g.width_in;
  const int64_t base = (h0 * g.width_in + w0) * g.channels;
  c.pixel[0] = (y0 && x0) ? base : -1;
  c.pixel[1] = (y0 && x1) ? base + g.channels : -1;
  c.pixel[2] = (y1 && x0) ? base + g.width_in * g.channels : -1;
  c.pixel[3] = (y1 && x1) ? base + (g.width_in + 1) * g.channels : -1;
  c.w[0] = hh * hw;
  c.w[1] = hh * c.lw;
  c.w[2] = c.lh * hw;
  c.w[3] = c.lh * c.lw;
  return true;
}

// Sampling location of point k of the (pixel, group) whose offsets start at `off`.
template <typename T, typename A>
__device__ __forceinline__ void location(const Geometry& g, const T* off, int k, int64_t ho,
                                         int64_t wo, A scale, A& loc_h, A& loc_w) {
  int gx, gy;
  grid_point(g, k, gx, gy);
  const int half_w = (g.dilation_w * (g.kernel_w - 1)) / 2;
  const int half_h = (g.dilation_h * (g.kernel_h - 1)) / 2;
  const A p0_w = A(half_w - g.pad_w + wo * g.stride_w);
  const A p0_h = A(half_h - g.pad_h + ho * g.stride_h);
  loc_w = p0_w + (A(gx) + static_cast<A>(off[2 * k])) * scale;
  loc_h = p0_h + (A(gy) + static_cast<A>(off[2 * k + 1])) * scale;
}

template <typename T, int D>
__global__ void forward_kernel(const T* __restrict__ input, const T* __restrict__ offset,
                               const T* __restrict__ mask, T* __restrict__ output, Geometry g,
                               double offset_scale, int64_t total) {
  using A = at::opmath_type<T>;
  const int tpg = g.group_channels / D;  // threads per (pixel, group)
  const int64_t tid = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (tid >= total) return;
  const int lane = static_cast<int>(tid % tpg);
  const int64_t pg = tid / tpg;  // (n, ho, wo, group) flattened
  const int grp = static_cast<int>(pg % g.group);
  const int64_t pix = pg / g.group;
  const int64_t wo = pix % g.width_out, ho = (pix / g.width_out) % g.height_out,
                n = pix / (g.width_out * g.height_out);
  const A scale = static_cast<A>(offset_scale);
  const T* off = offset + pg * g.points * 2;
  const T* msk = mask + pg * g.points;
  const T* in = input + n * g.height_in * g.width_in * g.channels + grp * g.group_channels + lane * D;
  A acc[D];
#pragma unroll
  for (int d = 0; d < D; ++d) acc[d] = A(0);
  for (int k = 0; k < g.points; ++k) {
    A loc_h, loc_w;
    location(g, off, k, ho, wo, scale, loc_h, loc_w);
    Corners<A> c;
    if (!locate(g, loc_h, loc_w, c)) continue;
    const A m = static_cast<A>(msk[k]);
#pragma unroll
    for (int q = 0; q < 4; ++q) {
      if (c.pixel[q] < 0) continue;
      const Vec<T, D> v = *reinterpret_cast<const Vec<T, D>*>(in + c.pixel[q]);
      const A w = c.w[q] * m;
#pragma unroll
      for (int d = 0; d < D; ++d) acc[d] += w * static_cast<A>(v.v[d]);
    }
  }
  Vec<T, D> out;
#pragma unroll
  for (int d = 0; d < D; ++d) out.v[d] = static_cast<T>(acc[d]);
  *reinterpret_cast<Vec<T, D>*>(output + pix * g.channels + grp * g.group_channels + lane * D) = out;
}

// Sum over the `width` consecutive lanes of a segment (width a power of two <= 32).
template <typename A>
__device__ __forceinline__ A segment_sum(A v, int width) {
  for (int s = width / 2; s > 0; s /= 2) v += __shfl_xor_sync(0xffffffffu, v, s, width);
  return v;
}

template <typename T, int D>
__global__ void backward_kernel(const T* __restrict__ grad_output, const T* __restrict__ input,
                                const T* __restrict__ offset, const T* __restrict__ mask,
                                at::opmath_type<T>* __restrict__ grad_input,
                                at::opmath_type<T>* __restrict__ grad_offset,
                                at::opmath_type<T>* __restrict__ grad_mask, Geometry g,
                                double offset_scale, int64_t total, bool shuffle) {
  using A = at::opmath_type<T>;
  const int tpg = g.group_channels / D;
  const int64_t tid = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  // With shuffles every lane of the warp must take part, so out-of-range threads stay (inactive).
  const bool active = tid < total;
  if (!active && !shuffle) return;
  const int64_t t = active ? tid : 0;
  const int lane = static_cast<int>(t % tpg);
  const int64_t pg = t / tpg;
  const int grp = static_cast<int>(pg % g.group);
  const int64_t pix = pg / g.group;
  const int64_t wo = pix % g.width_out, ho = (pix / g.width_out) % g.height_out,
                n = pix / (g.width_out * g.height_out);
  const A scale = static_cast<A>(offset_scale);
  const T* off = offset + pg * g.points * 2;
  const T* msk = mask + pg * g.points;
  const int64_t chan = grp * g.group_channels + lane * D;
  const int64_t image = n * g.height_in * g.width_in * g.channels;
  const T* in = input + image + chan;
  A* gin = grad_input + image + chan;
  A go[D];
  {
    const Vec<T, D> v = *reinterpret_cast<const Vec<T, D>*>(grad_output + pix * g.channels + chan);
#pragma unroll
    for (int d = 0; d < D; ++d) go[d] = active ? static_cast<A>(v.v[d]) : A(0);
  }
  for (int k = 0; k < g.points; ++k) {
    A loc_h, loc_w;
    location(g, off, k, ho, wo, scale, loc_h, loc_w);
    Corners<A> c;
    const bool inside = locate(g, loc_h, loc_w, c);
    const A m = static_cast<A>(msk[k]);
    A dot[4] = {A(0), A(0), A(0), A(0)};
    if (inside && active) {
#pragma unroll
      for (int q = 0; q < 4; ++q) {
        if (c.pixel[q] < 0) continue;
        const Vec<T, D> v = *reinterpret_cast<const Vec<T, D>*>(in + c.pixel[q]);
        const A w = c.w[q] * m;
        A s = A(0);
#pragma unroll
        for (int d = 0; d < D; ++d) {
          s += go[d] * static_cast<A>(v.v[d]);
          atomicAdd(gin + c.pixel[q] + d, w * go[d]);
        }
        dot[q] = s;
      }
    }
    A gm = inside ? c.w[0] * dot[0] + c.w[1] * dot[1] + c.w[2] * dot[2] + c.w[3] * dot[3] : A(0);
    A gx = inside ? m * scale * ((A(1) - c.lh) * (dot[1] - dot[0]) + c.lh * (dot[3] - dot[2])) : A(0);
    A gy = inside ? m * scale * ((A(1) - c.lw) * (dot[2] - dot[0]) + c.lw * (dot[3] - dot[1])) : A(0);
    const int64_t idx = pg * g.points + k;
    if (shuffle) {
      gm = segment_sum(gm, tpg);
      gx = segment_sum(gx, tpg);
      gy = segment_sum(gy, tpg);
      if (active && lane == 0) {
        grad_mask[idx] = gm;
        grad_offset[2 * idx] = gx;
        grad_offset[2 * idx + 1] = gy;
      }
    } else if (active) {
      atomicAdd(grad_mask + idx, gm);
      atomicAdd(grad_offset + 2 * idx, gx);
      atomicAdd(grad_offset + 2 * idx + 1, gy);
    }
  }
}

// Upstream-style baseline: one thread per (pixel, group, channel), scalar loads.
template <typename T>
__global__ void forward_naive_kernel(const T* __restrict__ input, const T* __restrict__ offset,
                                     const T* __restrict__ mask, T* __restrict__ output,
                                     Geometry g, double offset_scale, int64_t total) {
  using A = at::opmath_type<T>;
  const int64_t tid = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (tid >= total) return;
  const int c = static_cast<int>(tid % g.group_channels);
  const int64_t pg = tid / g.group_channels;
  const int grp = static_cast<int>(pg % g.group);
  const int64_t pix = pg / g.group;
  const int64_t wo = pix % g.width_out, ho = (pix / g.width_out) % g.height_out,
                n = pix / (g.width_out * g.height_out);
  const A scale = static_cast<A>(offset_scale);
  const T* off = offset + pg * g.points * 2;
  const T* msk = mask + pg * g.points;
  const T* in = input + n * g.height_in * g.width_in * g.channels + grp * g.group_channels + c;
  A acc = A(0);
  for (int k = 0; k < g.points; ++k) {
    A loc_h, loc_w;
    location(g, off, k, ho, wo, scale, loc_h, loc_w);
    Corners<A> cr;
    if (!locate(g, loc_h, loc_w, cr)) continue;
    const A m = static_cast<A>(msk[k]);
    for (int q = 0; q < 4; ++q) {
      if (cr.pixel[q] >= 0) acc += cr.w[q] * m * static_cast<A>(in[cr.pixel[q]]);
    }
  }
  output[pix * g.channels + grp * g.group_channels + c] = static_cast<T>(acc);
}

// Channels per thread: 16 bytes per load when the group width and the pointers' alignment allow it
// (a contiguous tensor may still start at an odd storage offset).
template <typename T>
int pick_vector_width(int64_t group_channels, std::initializer_list<const void*> pointers) {
  int d = static_cast<int>(16 / sizeof(T));
  auto aligned = [&](int width) {
    for (const void* ptr : pointers) {
      if (reinterpret_cast<std::uintptr_t>(ptr) % (sizeof(T) * width) != 0) return false;
    }
    return true;
  };
  while (d > 1 && (group_channels % d != 0 || !aligned(d))) d /= 2;
  return d;
}

int64_t blocks_for(int64_t total) { return (total + kThreads - 1) / kThreads; }

template <typename T, int D>
void launch_forward(const Dcnv3Params& p, const at::Tensor& x, const at::Tensor& off,
                    const at::Tensor& msk, at::Tensor& out) {
  const int64_t total = p.batch * p.height_out * p.width_out * p.group * (p.group_channels / D);
  forward_kernel<T, D><<<blocks_for(total), kThreads, 0, c10::cuda::getCurrentCUDAStream()>>>(
      x.const_data_ptr<T>(), off.const_data_ptr<T>(), msk.const_data_ptr<T>(),
      out.mutable_data_ptr<T>(), make_geometry(p), p.offset_scale, total);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

template <typename T, int D>
void launch_backward(const Dcnv3Params& p, const at::Tensor& go, const at::Tensor& x,
                     const at::Tensor& off, const at::Tensor& msk, at::Tensor& gin,
                     at::Tensor& goff, at::Tensor& gmsk) {
  using A = at::opmath_type<T>;
  const int tpg = static_cast<int>(p.group_channels / D);
  const bool shuffle = tpg <= 32 && (tpg & (tpg - 1)) == 0;
  const int64_t total = p.batch * p.height_out * p.width_out * p.group * tpg;
  backward_kernel<T, D><<<blocks_for(total), kThreads, 0, c10::cuda::getCurrentCUDAStream()>>>(
      go.const_data_ptr<T>(), x.const_data_ptr<T>(), off.const_data_ptr<T>(),
      msk.const_data_ptr<T>(), gin.mutable_data_ptr<A>(), goff.mutable_data_ptr<A>(),
      gmsk.mutable_data_ptr<A>(), make_geometry(p), p.offset_scale, total, shuffle);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

template <typename T, typename F>
void with_vector_width(int64_t group_channels, std::initializer_list<const void*> pointers, F&& f) {
  switch (pick_vector_width<T>(group_channels, pointers)) {
    case 8: f(std::integral_constant<int, 8>{}); break;
    case 4: f(std::integral_constant<int, 4>{}); break;
    case 2: f(std::integral_constant<int, 2>{}); break;
    default: f(std::integral_constant<int, 1>{}); break;
  }
}

void check_cuda(const at::Tensor& t, const char* name) {
  TORCH_CHECK(t.is_cuda(), "dcnv3: ", name, " must be a CUDA tensor for the CUDA kernel");
}

at::Tensor forward_cuda(const at::Tensor& input, const at::Tensor& offset, const at::Tensor& mask,
                        int64_t kernel_h, int64_t kernel_w, int64_t stride_h, int64_t stride_w,
                        int64_t pad_h, int64_t pad_w, int64_t dilation_h, int64_t dilation_w,
                        int64_t group, int64_t group_channels, double offset_scale,
                        bool remove_center) {
  const Dcnv3Params p = make_params(input, offset, mask, kernel_h, kernel_w, stride_h, stride_w,
                                    pad_h, pad_w, dilation_h, dilation_w, group, group_channels,
                                    offset_scale, remove_center);
  check_cuda(input, "input");
  const c10::cuda::CUDAGuard guard(input.device());
  const at::Tensor x = input.contiguous(), off = offset.contiguous(), msk = mask.contiguous();
  at::Tensor out = at::empty({p.batch, p.height_out, p.width_out, p.channels}, x.options());
  if (out.numel() == 0) return out;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "dcnv3_forward_cuda", [&] {
    with_vector_width<scalar_t>(p.group_channels, {x.const_data_ptr(), out.const_data_ptr()}, [&](auto d) {
      launch_forward<scalar_t, decltype(d)::value>(p, x, off, msk, out);
    });
  });
  return out;
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> backward_cuda(
    const at::Tensor& grad_output, const at::Tensor& input, const at::Tensor& offset,
    const at::Tensor& mask, int64_t kernel_h, int64_t kernel_w, int64_t stride_h, int64_t stride_w,
    int64_t pad_h, int64_t pad_w, int64_t dilation_h, int64_t dilation_w, int64_t group,
    int64_t group_channels, double offset_scale, bool remove_center) {
  const Dcnv3Params p = make_params(input, offset, mask, kernel_h, kernel_w, stride_h, stride_w,
                                    pad_h, pad_w, dilation_h, dilation_w, group, group_channels,
                                    offset_scale, remove_center);
  check_cuda(input, "input");
  check_grad_output(grad_output, input, p);
  const c10::cuda::CUDAGuard guard(input.device());
  const at::Tensor go = grad_output.contiguous(), x = input.contiguous(),
                   off = offset.contiguous(), msk = mask.contiguous();
  const auto acc_type = x.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  at::Tensor gin = at::zeros(x.sizes(), x.options().dtype(acc_type));
  at::Tensor goff = at::zeros(off.sizes(), off.options().dtype(acc_type));
  at::Tensor gmsk = at::zeros(msk.sizes(), msk.options().dtype(acc_type));
  if (go.numel() > 0) {
    AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "dcnv3_backward_cuda", [&] {
      with_vector_width<scalar_t>(p.group_channels, {x.const_data_ptr(), go.const_data_ptr()}, [&](auto d) {
        launch_backward<scalar_t, decltype(d)::value>(p, go, x, off, msk, gin, goff, gmsk);
      });
    });
  }
  return {gin.to(x.scalar_type()), goff.to(x.scalar_type()), gmsk.to(x.scalar_type())};
}

at::Tensor forward_naive_cuda(const at::Tensor& input, const at::Tensor& offset,
                              const at::Tensor& mask, int64_t kernel_h, int64_t kernel_w,
                              int64_t stride_h, int64_t stride_w, int64_t pad_h, int64_t pad_w,
                              int64_t dilation_h, int64_t dilation_w, int64_t group,
                              int64_t group_channels, double offset_scale, bool remove_center) {
  const Dcnv3Params p = make_params(input, offset, mask, kernel_h, kernel_w, stride_h, stride_w,
                                    pad_h, pad_w, dilation_h, dilation_w, group, group_channels,
                                    offset_scale, remove_center);
  check_cuda(input, "input");
  const c10::cuda::CUDAGuard guard(input.device());
  const at::Tensor x = input.contiguous(), off = offset.contiguous(), msk = mask.contiguous();
  at::Tensor out = at::empty({p.batch, p.height_out, p.width_out, p.channels}, x.options());
  const int64_t total = out.numel();
  if (total == 0) return out;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "dcnv3_forward_naive", [&] {
    forward_naive_kernel<scalar_t><<<blocks_for(total), kThreads, 0, c10::cuda::getCurrentCUDAStream()>>>(
        x.const_data_ptr<scalar_t>(), off.const_data_ptr<scalar_t>(), msk.const_data_ptr<scalar_t>(),
        out.mutable_data_ptr<scalar_t>(), make_geometry(p), p.offset_scale, total);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return out;
}

}  // namespace
}  // namespace dcnv3::cuda

TORCH_LIBRARY_IMPL(dcnv3, CUDA, m) {
  m.impl("dcnv3_forward", &dcnv3::cuda::forward_cuda);
  m.impl("dcnv3_backward", &dcnv3::cuda::backward_cuda);
  m.impl("_dcnv3_forward_naive", &dcnv3::cuda::forward_naive_cuda);
}
