// Fused CPU kernels for ERA, sigma(x) = a x + b + sum_i (c_i x + d_i) / ((x - e_i)^2 + f_i^2 + eps).
//
// Why: as plain TensorFlow ops the backward pass materialises one full-size tensor per
// intermediate and reduces each parameter gradient separately; here the forward op is one pass
// over x, and the backward op reads x and dy once and writes dx plus every parameter gradient.
//
// Layout: numerator (G, 2 + 2n) = [a, b, c_1, d_1, ...], denominator (G, 2n) = [e_1, f_1, ...],
// G = 1 (one set for the whole tensor) or G = C (one set per last-axis channel). The flat tensor
// is viewed as rows of W lanes, W a multiple of G, so lane j always uses parameter group j % G
// and the inner loops run over contiguous lanes with per-lane parameters (vectorisable for any G).
// Rows are split into a fixed number of blocks (a function of the shape only) that the TF CPU
// worker pool runs in parallel; each block keeps its own partial sums (float per chunk, flushed to
// double), which are added in block order at the end, so the result does not depend on the
// thread count or the scheduling.
#include <algorithm>
#include <cstdint>
#include <vector>

#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/shape_inference.h"

namespace {

using tensorflow::OpKernel;
using tensorflow::OpKernelConstruction;
using tensorflow::OpKernelContext;
using tensorflow::Tensor;
using tensorflow::TensorShape;
namespace errors = tensorflow::errors;

constexpr int64_t kMinLanes = 128;          // lanes per row when G is small
constexpr int64_t kMinBlockElems = 32768;   // smallest block worth a task
constexpr int64_t kMaxBlocks = 128;         // enough tasks to balance many threads
constexpr int64_t kMaxPartials = 1 << 19;   // doubles in all blocks' partial sums (4 MiB)
constexpr int64_t kChunkElems = 4096;       // float accumulation span before a double flush

// How a tensor of T elements with G parameter groups is cut into rows and blocks.
struct Plan {
  int64_t groups, terms, lanes, rows, tail, blocks, rows_per_block;

  Plan(int64_t total, int64_t g, int64_t n) : groups(g), terms(n) {
    lanes = g >= kMinLanes ? g : g * ((kMinLanes + g - 1) / g);
    rows = total / lanes;
    tail = total % lanes;
    const int64_t min_rows = std::max<int64_t>(1, kMinBlockElems / lanes);
    const int64_t max_blocks =
        std::clamp<int64_t>(kMaxPartials / ((2 + 4 * n) * lanes), 1, kMaxBlocks);
    blocks = std::clamp<int64_t>((rows + min_rows - 1) / min_rows, 1, max_blocks);
    rows_per_block = std::max<int64_t>(1, (rows + blocks - 1) / blocks);
  }
  // Rows [begin, end) of block b; the last block also owns the partial tail row.
  int64_t begin(int64_t b) const { return std::min(rows, b * rows_per_block); }
  int64_t end(int64_t b) const { return std::min(rows, (b + 1) * rows_per_block); }
};

// Parameters expanded to structure-of-arrays over lanes: row k of `p` (W floats) holds
// parameter k for every lane, k = a, b, then c_i, d_i, e_i, f_i^2 + eps for each term i.
std::vector<float> expand_params(const float* num, const float* den, const Plan& plan,
                                 float eps) {
  const int64_t n = plan.terms, W = plan.lanes, G = plan.groups;
  std::vector<float> p((2 + 4 * n) * W);
  for (int64_t j = 0; j < W; ++j) {
    const float* nu = num + (j % G) * (2 + 2 * n);
    const float* de = den + (j % G) * (2 * n);
    p[0 * W + j] = nu[0];
    p[1 * W + j] = nu[1];
    for (int64_t i = 0; i < n; ++i) {
      float* q = p.data() + (2 + 4 * i) * W + j;
      q[0 * W] = nu[2 + 2 * i];
      q[1 * W] = nu[3 + 2 * i];
      q[2 * W] = de[2 * i];
      q[3 * W] = de[2 * i + 1] * de[2 * i + 1] + eps;
    }
  }
  return p;
}

void forward_row(const float* __restrict x, float* __restrict y, int64_t w,
                 const float* __restrict p, int64_t W, int64_t n) {
  const float* A = p;
  const float* B = p + W;
  for (int64_t j = 0; j < w; ++j) y[j] = A[j] * x[j] + B[j];
  for (int64_t i = 0; i < n; ++i) {
    const float* C = p + (2 + 4 * i) * W;
    const float* D = C + W;
    const float* E = D + W;
    const float* F2 = E + W;
    for (int64_t j = 0; j < w; ++j) {
      const float u = x[j] - E[j];
      const float r = 1.0f / (u * u + F2[j]);
      y[j] += (C[j] * x[j] + D[j]) * r;
    }
  }
}

// dx for one row, and per-lane sums added into acc (K rows of W floats, K = 2 + 4n):
// sum g x, sum g, then per term sum g x r, sum g r, sum g q r u, sum g q r, with
// r = 1 / denominator and q = (c x + d) r.
void backward_row(const float* __restrict g, const float* __restrict x, float* __restrict dx,
                  int64_t w, const float* __restrict p, int64_t W, int64_t n,
                  float* __restrict acc) {
  const float* A = p;
  for (int64_t j = 0; j < w; ++j) {
    dx[j] = A[j] * g[j];
    acc[j] += g[j] * x[j];
    acc[W + j] += g[j];
  }
  for (int64_t i = 0; i < n; ++i) {
    const float* C = p + (2 + 4 * i) * W;
    const float* D = C + W;
    const float* E = D + W;
    const float* F2 = E + W;
    float* sc = acc + (2 + 4 * i) * W;
    float* sd = sc + W;
    float* se = sd + W;
    float* sf = se + W;
    for (int64_t j = 0; j < w; ++j) {
      const float u = x[j] - E[j];
      const float r = 1.0f / (u * u + F2[j]);
      const float q = (C[j] * x[j] + D[j]) * r;
      const float gr = g[j] * r;
      const float gqr = gr * q;
      dx[j] += gr * C[j] - 2.0f * gqr * u;
      sc[j] += gr * x[j];
      sd[j] += gr;
      se[j] += gqr * u;
      sf[j] += gqr;
    }
  }
}

// Checks shapes and sets (G, n); a clear error otherwise.
absl::Status check_inputs(const Tensor& x, const Tensor& num, const Tensor& den,
                          int64_t* groups, int64_t* terms) {
  if (num.dims() != 2 || den.dims() != 2)
    return errors::InvalidArgument("numerator and denominator must be 2-D (groups, params), "
                                   "got shapes ", num.shape().DebugString(), " and ",
                                   den.shape().DebugString());
  const int64_t g = num.dim_size(0), k = den.dim_size(1);
  if (k < 2 || k % 2 != 0 || num.dim_size(1) != k + 2 || den.dim_size(0) != g)
    return errors::InvalidArgument("expected numerator (G, 2n + 2) and denominator (G, 2n) "
                                   "with n >= 1, got ", num.shape().DebugString(), " and ",
                                   den.shape().DebugString());
  const int64_t channels = x.dims() > 0 ? x.dim_size(x.dims() - 1) : 1;
  if (g != 1 && g != channels)
    return errors::InvalidArgument("parameter groups (", g, ") must be 1 or the size of the "
                                   "last input axis (", channels, ")");
  *groups = g;
  *terms = k / 2;
  return absl::OkStatus();
}

class EraForwardOp : public OpKernel {
 public:
  explicit EraForwardOp(OpKernelConstruction* ctx) : OpKernel(ctx) {
    OP_REQUIRES_OK(ctx, ctx->GetAttr("eps", &eps_));
  }

  void Compute(OpKernelContext* ctx) override {
    const Tensor& x = ctx->input(0);
    const Tensor& num = ctx->input(1);
    const Tensor& den = ctx->input(2);
    int64_t groups, terms;
    OP_REQUIRES_OK(ctx, check_inputs(x, num, den, &groups, &terms));
    Tensor* y = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, x.shape(), &y));
    const int64_t total = x.NumElements();
    if (total == 0) return;

    const Plan plan(total, groups, terms);
    const std::vector<float> p =
        expand_params(num.flat<float>().data(), den.flat<float>().data(), plan, eps_);
    const float* xs = x.flat<float>().data();
    float* ys = y->flat<float>().data();
    const int64_t W = plan.lanes;
    auto run_block = [&](int64_t b0, int64_t b1) {
      for (int64_t b = b0; b < b1; ++b) {
        for (int64_t r = plan.begin(b); r < plan.end(b); ++r)
          forward_row(xs + r * W, ys + r * W, W, p.data(), W, terms);
        if (b == plan.blocks - 1 && plan.tail > 0)
          forward_row(xs + plan.rows * W, ys + plan.rows * W, plan.tail, p.data(), W, terms);
      }
    };
    ctx->device()->tensorflow_cpu_worker_threads()->workers->ParallelFor(
        plan.blocks, tsl::thread::ThreadPool::SchedulingParams::Fixed(1), run_block);
  }

 private:
  float eps_;
};

class EraBackwardOp : public OpKernel {
 public:
  explicit EraBackwardOp(OpKernelConstruction* ctx) : OpKernel(ctx) {
    OP_REQUIRES_OK(ctx, ctx->GetAttr("eps", &eps_));
  }

  void Compute(OpKernelContext* ctx) override {
    const Tensor& dy = ctx->input(0);
    const Tensor& x = ctx->input(1);
    const Tensor& num = ctx->input(2);
    const Tensor& den = ctx->input(3);
    OP_REQUIRES(ctx, dy.shape() == x.shape(),
                errors::InvalidArgument("dy shape ", dy.shape().DebugString(),
                                        " differs from x shape ", x.shape().DebugString()));
    int64_t groups, terms;
    OP_REQUIRES_OK(ctx, check_inputs(x, num, den, &groups, &terms));
    Tensor *dx = nullptr, *dnum = nullptr, *dden = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, x.shape(), &dx));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(1, num.shape(), &dnum));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(2, den.shape(), &dden));
    const int64_t total = x.NumElements();
    const int64_t K = 2 + 4 * terms;

    const Plan plan(total, groups, terms);
    const int64_t W = plan.lanes;
    std::vector<double> partial(plan.blocks * K * W, 0.0);
    if (total > 0) {
      const std::vector<float> p =
          expand_params(num.flat<float>().data(), den.flat<float>().data(), plan, eps_);
      const float* gs = dy.flat<float>().data();
      const float* xs = x.flat<float>().data();
      float* dxs = dx->flat<float>().data();
      const int64_t chunk_rows = std::max<int64_t>(1, kChunkElems / W);
      auto run_block = [&](int64_t b0, int64_t b1) {
        std::vector<float> acc(K * W);
        for (int64_t b = b0; b < b1; ++b) {
          double* out = partial.data() + b * K * W;
          auto flush = [&]() {
            for (int64_t k = 0; k < K * W; ++k) out[k] += acc[k];
            std::fill(acc.begin(), acc.end(), 0.0f);
          };
          std::fill(acc.begin(), acc.end(), 0.0f);
          const int64_t r1 = plan.end(b);
          for (int64_t r0 = plan.begin(b); r0 < r1; r0 += chunk_rows) {
            for (int64_t r = r0; r < std::min(r1, r0 + chunk_rows); ++r)
              backward_row(gs + r * W, xs + r * W, dxs + r * W, W, p.data(), W, terms,
                           acc.data());
            flush();
          }
          if (b == plan.blocks - 1 && plan.tail > 0) {
            const int64_t off = plan.rows * W;
            backward_row(gs + off, xs + off, dxs + off, plan.tail, p.data(), W, terms,
                         acc.data());
            flush();
          }
        }
      };
      ctx->device()->tensorflow_cpu_worker_threads()->workers->ParallelFor(
          plan.blocks, tsl::thread::ThreadPool::SchedulingParams::Fixed(1), run_block);
    }

    // Sum the blocks in order, fold lanes onto their parameter groups, apply the chain rule.
    std::vector<double> sums(groups * K, 0.0);
    for (int64_t b = 0; b < plan.blocks; ++b)
      for (int64_t k = 0; k < K; ++k)
        for (int64_t j = 0; j < W; ++j)
          sums[(j % groups) * K + k] += partial[(b * K + k) * W + j];
    const float* dens = den.flat<float>().data();
    float* gn = dnum->flat<float>().data();
    float* gd = dden->flat<float>().data();
    for (int64_t g = 0; g < groups; ++g) {
      const double* s = sums.data() + g * K;
      float* gng = gn + g * (2 + 2 * terms);
      float* gdg = gd + g * 2 * terms;
      gng[0] = static_cast<float>(s[0]);
      gng[1] = static_cast<float>(s[1]);
      for (int64_t i = 0; i < terms; ++i) {
        const double* si = s + 2 + 4 * i;
        gng[2 + 2 * i] = static_cast<float>(si[0]);
        gng[3 + 2 * i] = static_cast<float>(si[1]);
        gdg[2 * i] = static_cast<float>(2.0 * si[2]);
        gdg[2 * i + 1] = static_cast<float>(-2.0 * dens[g * 2 * terms + 2 * i + 1] * si[3]);
      }
    }
  }

 private:
  float eps_;
};

}  // namespace

REGISTER_OP("EraForward")
    .Input("x: float")
    .Input("numerator: float")
    .Input("denominator: float")
    .Output("y: float")
    .Attr("eps: float")
    .SetShapeFn([](tensorflow::shape_inference::InferenceContext* c) {
      c->set_output(0, c->input(0));
      return absl::OkStatus();
    });

REGISTER_OP("EraBackward")
    .Input("dy: float")
    .Input("x: float")
    .Input("numerator: float")
    .Input("denominator: float")
    .Output("dx: float")
    .Output("dnumerator: float")
    .Output("ddenominator: float")
    .Attr("eps: float")
    .SetShapeFn([](tensorflow::shape_inference::InferenceContext* c) {
      c->set_output(0, c->input(1));
      c->set_output(1, c->input(2));
      c->set_output(2, c->input(3));
      return absl::OkStatus();
    });

REGISTER_KERNEL_BUILDER(Name("EraForward").Device(tensorflow::DEVICE_CPU), EraForwardOp);
REGISTER_KERNEL_BUILDER(Name("EraBackward").Device(tensorflow::DEVICE_CPU), EraBackwardOp);
