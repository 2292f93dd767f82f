// Fused symmetric-monomial feature products for the polynomial method (DESIGN §3.1, step 3).
//
// Two ops, each building one tile of monomial features in cache and consuming it at once, so no
// (tokens × r) feature matrix ever reaches memory:
//
//   ditbench::key_summary(x (B, m, d), vals (B, m, C), gain, steps, degree)  -> Z (B, r, C)
//       Z[b, i, c] = Σ_t M(gain·x[b, t])_i · vals[b, t, c]
//   ditbench::query_apply(x (B, n, d), w (B, r, C), gain, steps, degree)     -> Y (B, n, C)
//       Y[b, t, c] = Σ_i M(gain·x[b, t])_i · w[b, i, c]
//
// M(x) is the vector of the r = C(g + d, d) monomials x^α, |α| ≤ g, in the row order of
// ditbench.attention.features.monomial_table: row 0 is 1, rows 1..d are x, and every later row is
// (an earlier row)·x_coord, listed in `steps` as (dst, src, count, coord) int32 quadruples.
// The polynomial forward is T = (Y[..., :dv] / Y[..., dv]) with Z from (k̂, [v, 1]) and
// w = weights ∘ Z; the low-rank gradient's Ψ(A2)ᵀ[…] sums are key_summary calls.
//
// Virtual top degree (g ≥ 2): the last level's steps say row dst + a = (row src + a)·x_j, so the
// C(g − 1 + d, d − 1) top-degree monomials (2/3 of r at g = 4, d = 8) are never built or stored:
//   key pass   Z[dst + a, c] = Σ_t M[src + a, t] · (x_j[t]·vals[t, c])   (x_j ∘ vals: d·C per token)
//   query pass Y[t, c] = Σ_{i < r'} M[i, t] w[i, c] + Σ_j x_j[t] · Σ_a M[src + a, t] w[dst + a, c]
// Only the r' = C(g − 1 + d, d) lower monomials live in the tile. The products are the same
// 2·r·C per token and the same sums; the rounding differs only in where one multiply by x_j
// happens (each term still passes through g + 1 roundings before the sum: the tests' bound).
//
// Layout: a tile holds `tb` tokens *last* ((r', tb) and (C, tb)), so building a monomial row and
// both products vectorise over tokens with GCC vector extensions (-march=native picks the
// widest unit). Register tiles fit the 16 vector registers of AVX2 (accumulators + operands, no
// spill): key pass 3 features × 3 columns (6 loads per 9 FMAs, 15 registers), query pass 6 columns
// × 2 token vectors (2 loads + 6 broadcasts per 12 FMAs, 15 registers); every loaded operand is
// pinned to a register (pin) — GCC otherwise folds each use into its FMA as a memory operand and
// the loop becomes load-bound (measured: key pass 1.7×, query pass 1.2× slower). Padded tokens
// carry zero values and are dropped from outputs. Parallel over tiles with OpenMP, with exactly torch's thread count
// (at::get_num_threads(), capped by the tile count: OpenMP's own default would ignore
// torch.set_num_threads and the row's `threads` column would lie); each worker sums its
// tiles into a private Z that is then added under a mutex. Tiles are handed out dynamically
// (schedule(dynamic, 1)), so on a shared machine a descheduled thread holds up no one; the
// summation order, and so the last bits of Z, can differ between calls (tests bound the difference).
#include <ATen/Parallel.h>
#include <omp.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/scalar_tensor.h>
#include <ATen/ops/zeros.h>
#include <c10/util/Exception.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <tuple>
#include <cstring>
#include <mutex>
#include <vector>

namespace {

// V: a full SIMD register of T (aligned); U: the same, loadable from any T-aligned address.
template <typename T> struct Vec;
template <> struct Vec<float> {
  typedef float V __attribute__((vector_size(32)));
  typedef float U __attribute__((vector_size(32), aligned(4)));
  static constexpr int L = 8;
};
template <> struct Vec<double> {
  typedef double V __attribute__((vector_size(32)));
  typedef double U __attribute__((vector_size(32), aligned(8)));
  static constexpr int L = 4;
};

template <typename T> inline typename Vec<T>::V load(const T* p) {
  return *reinterpret_cast<const typename Vec<T>::U*>(p);
}
// Keep a loaded vector in a register: GCC otherwise folds each use into its FMA as a memory operand,
// re-loading a value the register tile loaded once (load-bound: measured 2x the loads per FMA).
// x86 with AVX only (a 32-byte vector fits one ymm register); elsewhere a no-op: the portable code
// is unchanged, only the register allocation hint is dropped.
template <typename V> inline void pin(V& v) {
#if (defined(__x86_64__) || defined(__i386__)) && defined(__AVX__)
  asm volatile("" : "+x"(v));
#else
  (void)v;
#endif
}
template <typename T> inline void store(T* p, typename Vec<T>::V v) { *reinterpret_cast<typename Vec<T>::U*>(p) = v; }
template <typename T> inline typename Vec<T>::V splat(T x);
template <> inline Vec<float>::V splat<float>(float x) { return Vec<float>::V{x, x, x, x, x, x, x, x}; }
template <> inline Vec<double>::V splat<double>(double x) { return Vec<double>::V{x, x, x, x}; }
template <typename T> inline T hsum(typename Vec<T>::V v) {
  T s = 0;
#pragma GCC unroll 8
  for (int l = 0; l < Vec<T>::L; ++l) s += v[l];
  return s;
}

struct Table {
  int64_t d, degree, rank;
  const int32_t* steps;  // (nsteps, 4): dst, src, count, coord
  int64_t nsteps;
  // The top degree is never built (see "Virtual top degree" above): rows low..rank come from the
  // last `top` steps, rows 0..low are built in the tile.
  int64_t low, top;
};

// Tokens t0 .. t0 + valid of x (.., d) → xt (d, tb), scaled by gain, zero padded.
template <typename T>
void load_coords(const T* x, int64_t d, int64_t t0, int64_t valid, int64_t tb, T gain, T* xt) {
  for (int64_t j = 0; j < d; ++j) {
    T* row = xt + j * tb;
    for (int64_t t = 0; t < valid; ++t) row[t] = gain * x[(t0 + t) * d + j];
    for (int64_t t = valid; t < tb; ++t) row[t] = T(0);
  }
}

// The monomials of degree < g (all of them when g ≤ 1): xt (d, tb) → mt (low, tb).
template <typename T>
void build_low_monomials(const Table& tab, const T* xt, int64_t tb, T* mt) {
  for (int64_t t = 0; t < tb; ++t) mt[t] = T(1);
  if (tab.degree >= 1) std::memcpy(mt + tb, xt, sizeof(T) * tab.d * tb);
  for (int64_t s = 0; s < tab.nsteps - tab.top; ++s) {
    const int32_t* st = tab.steps + 4 * s;
    const T* xc = xt + int64_t(st[3]) * tb;
    for (int32_t j = 0; j < st[2]; ++j) {
      T* out = mt + (int64_t(st[0]) + j) * tb;
      const T* src = mt + (int64_t(st[1]) + j) * tb;
#pragma omp simd
      for (int64_t t = 0; t < tb; ++t) out[t] = src[t] * xc[t];
    }
  }
}

// z (RI, C[, L]) += mt (RI rows, tb) · cols (C, tb)ᵀ for columns c0..c0+RC. With LANES, z is
// (rows, C, L): each lane keeps its own partial sum (no horizontal add per tile; summed once).
template <typename T, int RI, int RC, bool LANES>
inline void key_tile(const T* mt, const T* cols, int64_t tb, int64_t c0, int64_t C, T* z) {
  using V = typename Vec<T>::V;
  constexpr int L = Vec<T>::L;
  V acc[RI][RC];
  #pragma GCC unroll 16
  for (int a = 0; a < RI; ++a)
    #pragma GCC unroll 16
    for (int c = 0; c < RC; ++c) acc[a][c] = splat<T>(0);
  for (int64_t t = 0; t < tb; t += L) {
    V m[RI], w[RC];
    #pragma GCC unroll 16
    for (int a = 0; a < RI; ++a) { m[a] = load(mt + a * tb + t); pin(m[a]); }
    #pragma GCC unroll 16
    for (int c = 0; c < RC; ++c) { w[c] = load(cols + (c0 + c) * tb + t); pin(w[c]); }
    #pragma GCC unroll 16
    for (int a = 0; a < RI; ++a)
      #pragma GCC unroll 16
      for (int c = 0; c < RC; ++c) acc[a][c] += m[a] * w[c];
  }
  #pragma GCC unroll 16
  for (int a = 0; a < RI; ++a)
    #pragma GCC unroll 16
    for (int c = 0; c < RC; ++c) {
      const int64_t e = a * C + c0 + c;
      if constexpr (LANES) store(z + e * L, load(z + e * L) + acc[a][c]);
      else z[e] += hsum<T>(acc[a][c]);
    }
}

template <typename T, int RI, bool LANES>
inline void key_rows(const T* mt, const T* cols, int64_t tb, int64_t C, T* z) {
  int64_t c = 0;
  for (; c + 3 <= C; c += 3) key_tile<T, RI, 3, LANES>(mt, cols, tb, c, C, z);
  if (C - c == 2) key_tile<T, RI, 2, LANES>(mt, cols, tb, c, C, z);
  if (C - c == 1) key_tile<T, RI, 1, LANES>(mt, cols, tb, c, C, z);
}

// z (rows, C[, L]) += mt (rows, tb) · cols (C, tb)ᵀ.
template <typename T, bool LANES>
void key_block(const T* mt, const T* cols, int64_t rows, int64_t tb, int64_t C, T* z) {
  const int64_t ze = C * (LANES ? Vec<T>::L : 1);  // z elements per row
  int64_t i = 0;
  for (; i + 3 <= rows; i += 3) key_rows<T, 3, LANES>(mt + i * tb, cols, tb, C, z + i * ze);
  if (rows - i == 2) key_rows<T, 2, LANES>(mt + i * tb, cols, tb, C, z + i * ze);
  if (rows - i == 1) key_rows<T, 1, LANES>(mt + i * tb, cols, tb, C, z + i * ze);
}

// One tile's key summary: z (r, C[, L]) += M (r, tb) · vt (C, tb)ᵀ, the top degree through
// ut (d, C, tb) = x_j ∘ vt (a top row dst + a is row src + a times x_j).
template <typename T, bool LANES>
void key_tile_all(const Table& tab, const T* mt, const T* vt, const T* ut, int64_t tb, int64_t C, T* z) {
  const int64_t ze = C * (LANES ? Vec<T>::L : 1);
  key_block<T, LANES>(mt, vt, tab.low, tb, C, z);
  for (int64_t s = tab.nsteps - tab.top; s < tab.nsteps; ++s) {
    const int32_t* st = tab.steps + 4 * s;
    key_block<T, LANES>(mt + int64_t(st[1]) * tb, ut + int64_t(st[3]) * C * tb, st[2], tb, C, z + int64_t(st[0]) * ze);
  }
}

// Lane partials while the (r, C, L) accumulator stays small (a few MiB per worker).
constexpr int64_t kLaneBytes = int64_t(4) << 20;

// y (C, tb) for columns c0..c0+RC and token vectors t0..t0+RT·L: with xs null,
// y = wᵀ (C, rows) · mt (rows, tb); else y += xs ∘ (wᵀ · mt) (a top-degree run times its x_j).
template <typename T, int RC, int RT>
inline void query_tile(const T* mt, const T* w, int64_t rows, int64_t tb, int64_t c0, int64_t t0, int64_t C,
                       const T* xs, T* y) {
  using V = typename Vec<T>::V;
  constexpr int L = Vec<T>::L;
  V acc[RC][RT];
  #pragma GCC unroll 16
  for (int c = 0; c < RC; ++c)
    #pragma GCC unroll 16
    for (int u = 0; u < RT; ++u) acc[c][u] = splat<T>(0);
  for (int64_t i = 0; i < rows; ++i) {
    V m[RT];
    #pragma GCC unroll 16
    for (int u = 0; u < RT; ++u) { m[u] = load(mt + i * tb + t0 + u * L); pin(m[u]); }
    #pragma GCC unroll 16
    for (int c = 0; c < RC; ++c) {
      V wc = splat<T>(w[i * C + c0 + c]);
      #pragma GCC unroll 16
      for (int u = 0; u < RT; ++u) acc[c][u] += wc * m[u];
    }
  }
  #pragma GCC unroll 16
  for (int c = 0; c < RC; ++c)
    #pragma GCC unroll 16
    for (int u = 0; u < RT; ++u) {
      T* out = y + (c0 + c) * tb + t0 + u * L;
      if (xs == nullptr) store(out, acc[c][u]);
      else store(out, load(out) + load(xs + t0 + u * L) * acc[c][u]);
    }
}

template <typename T, int RT>
inline void query_cols(const T* mt, const T* w, int64_t rows, int64_t tb, int64_t t0, int64_t C, const T* xs,
                       T* y) {
  int64_t c = 0;
  for (; c + 6 <= C; c += 6) query_tile<T, 6, RT>(mt, w, rows, tb, c, t0, C, xs, y);
  switch (C - c) {
    case 5: query_tile<T, 5, RT>(mt, w, rows, tb, c, t0, C, xs, y); break;
    case 4: query_tile<T, 4, RT>(mt, w, rows, tb, c, t0, C, xs, y); break;
    case 3: query_tile<T, 3, RT>(mt, w, rows, tb, c, t0, C, xs, y); break;
    case 2: query_tile<T, 2, RT>(mt, w, rows, tb, c, t0, C, xs, y); break;
    case 1: query_tile<T, 1, RT>(mt, w, rows, tb, c, t0, C, xs, y); break;
    default: break;
  }
}

constexpr int kRT = 2;  // token vectors per query register tile

// Tokens per tile: `width`·tb elements ≈ 256 KiB (a per-core L2 share), a multiple of kRT·L in
// [kRT·L, 1024]; width = low + C + d (+ d·C for the key pass's x_j ∘ values).
template <typename T> int64_t tile_tokens(int64_t width, int64_t requested) {
  const int64_t unit = kRT * Vec<T>::L;
  int64_t tb = requested > 0 ? requested : (int64_t(256) << 10) / (int64_t(sizeof(T)) * width);
  tb = std::max(unit, std::min<int64_t>(1024, tb / unit * unit));
  return tb;
}

Table make_table(const at::Tensor& steps, int64_t d, int64_t degree, int64_t rank) {
  TORCH_CHECK(steps.scalar_type() == at::kInt && steps.dim() == 2 && steps.size(1) == 4 && steps.is_contiguous(),
              "steps must be a contiguous (S, 4) int32 tensor");
  const int64_t nsteps = steps.size(0);
  TORCH_CHECK(nsteps == std::max<int64_t>(degree - 1, 0) * d, "steps must hold d steps per degree ≥ 2: expected ",
              std::max<int64_t>(degree - 1, 0) * d, ", got ", nsteps);
  const int32_t* sp = steps.data_ptr<int32_t>();
  const int64_t top = degree >= 2 ? d : 0;
  const int64_t low = top > 0 ? sp[4 * (nsteps - top)] : rank;  // the first top-degree row
  TORCH_CHECK(top == 0 || sp[4 * (nsteps - 1)] + sp[4 * (nsteps - 1) + 2] == rank,
              "the last step must end at row rank = ", rank);
  return Table{d, degree, rank, sp, nsteps, low, top};
}

void check_inputs(const at::Tensor& x, const at::Tensor& other, const char* what) {
  TORCH_CHECK(x.device().is_cpu() && other.device().is_cpu(), "ditbench fused products run on CPU tensors only");
  TORCH_CHECK(x.dim() == 3 && other.dim() == 3, "x and ", what, " must be 3-D (B, tokens, ·)");
  TORCH_CHECK(x.is_contiguous() && other.is_contiguous(), "x and ", what, " must be contiguous");
  TORCH_CHECK(x.scalar_type() == other.scalar_type(), "x and ", what, " must share a dtype");
  TORCH_CHECK(x.scalar_type() == at::kFloat || x.scalar_type() == at::kDouble, "float32 or float64 only");
}

template <typename T>
void key_summary_impl(const at::Tensor& x, const at::Tensor& vals, double gain, const Table& tab, int64_t block,
                      bool ones, at::Tensor& z) {
  const int64_t B = x.size(0), m = x.size(1), d = x.size(2), CV = vals.size(2), C = CV + (ones ? 1 : 0);
  const int64_t r = tab.rank;
  const int64_t ud = tab.top > 0 ? d : 0;  // rows of x_j ∘ values kept per tile
  const int64_t tb = tile_tokens<T>(tab.low + C + d + ud * C, block);
  const int64_t tiles = (m + tb - 1) / tb;
  const T* xp = x.data_ptr<T>();
  const T* vp = vals.data_ptr<T>();
  T* zp = z.data_ptr<T>();
  std::mutex lock;
  const int64_t jobs = B * tiles;
  const int threads = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(at::get_num_threads(), jobs)));
#pragma omp parallel num_threads(threads)
  {
    constexpr int64_t L = Vec<T>::L;
    const bool lanes = r * C * L * int64_t(sizeof(T)) <= kLaneBytes;
    const int64_t width = lanes ? L : 1;
    std::vector<T> xt(d * tb), mt(tab.low * tb), vt(C * tb), ut(ud * C * tb), acc;
    int64_t acc_batch = -1;
    auto flush = [&]() {
      if (acc_batch < 0) return;
      std::lock_guard<std::mutex> guard(lock);
      T* dst = zp + acc_batch * r * C;
      for (int64_t e = 0; e < r * C; ++e) {
        T sum = 0;
        for (int64_t l = 0; l < width; ++l) sum += acc[e * width + l];
        dst[e] += sum;
      }
    };
#pragma omp for schedule(dynamic, 1) nowait
    for (int64_t job = 0; job < jobs; ++job) {
      const int64_t b = job / tiles, t0 = (job % tiles) * tb, valid = std::min(tb, m - t0);
      if (b != acc_batch) {
        flush();
        acc.assign(r * C * width, T(0));
        acc_batch = b;
      }
      load_coords<T>(xp + b * m * d, d, t0, valid, tb, T(gain), xt.data());
      build_low_monomials<T>(tab, xt.data(), tb, mt.data());
      const T* vb = vp + (b * m + t0) * CV;
      for (int64_t c = 0; c < C; ++c) {
        T* row = vt.data() + c * tb;
        if (c < CV) for (int64_t t = 0; t < valid; ++t) row[t] = vb[t * CV + c];
        else for (int64_t t = 0; t < valid; ++t) row[t] = T(1);  // the implicit ones column
        for (int64_t t = valid; t < tb; ++t) row[t] = T(0);
      }
      for (int64_t j = 0; j < ud; ++j)
        for (int64_t c = 0; c < C; ++c) {
          T* out = ut.data() + (j * C + c) * tb;
          const T* xj = xt.data() + j * tb;
          const T* vc = vt.data() + c * tb;
#pragma omp simd
          for (int64_t t = 0; t < tb; ++t) out[t] = xj[t] * vc[t];
        }
      if (lanes) key_tile_all<T, true>(tab, mt.data(), vt.data(), ut.data(), tb, C, acc.data());
      else key_tile_all<T, false>(tab, mt.data(), vt.data(), ut.data(), tb, C, acc.data());
    }
    flush();
  }
}

// With `out` (B, n, C − 1) defined, writes Y[..., :C−1] / Y[..., C−1] there instead of Y to y and
// returns the smallest normaliser Y[..., C−1] (NaN if any is NaN); else returns +inf.
template <typename T>
double query_apply_impl(const at::Tensor& x, const at::Tensor& w, double gain, const Table& tab, int64_t block,
                        at::Tensor& y, at::Tensor* out) {
  const int64_t B = x.size(0), n = x.size(1), d = x.size(2), C = w.size(2), r = tab.rank;
  const int64_t tb = tile_tokens<T>(tab.low + C + d, block);
  const int64_t tiles = (n + tb - 1) / tb;
  constexpr int64_t unit = kRT * Vec<T>::L;
  const T* xp = x.data_ptr<T>();
  const T* wp = w.data_ptr<T>();
  T* yp = out == nullptr ? y.data_ptr<T>() : nullptr;
  T* op = out != nullptr ? out->data_ptr<T>() : nullptr;
  const int64_t jobs = B * tiles;
  const int threads = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(at::get_num_threads(), jobs)));
  double worst = std::numeric_limits<double>::infinity();
  std::mutex lock;
#pragma omp parallel num_threads(threads)
  {
    std::vector<T> xt(d * tb), mt(tab.low * tb), yt(C * tb);
    double mine = std::numeric_limits<double>::infinity();
#pragma omp for schedule(dynamic, 1) nowait
    for (int64_t job = 0; job < jobs; ++job) {
      const int64_t b = job / tiles, t0 = (job % tiles) * tb, valid = std::min(tb, n - t0);
      load_coords<T>(xp + b * n * d, d, t0, valid, tb, T(gain), xt.data());
      build_low_monomials<T>(tab, xt.data(), tb, mt.data());
      const T* wb = wp + b * r * C;
      for (int64_t u = 0; u < (valid + unit - 1) / unit * unit; u += unit) {
        query_cols<T, kRT>(mt.data(), wb, tab.low, tb, u, C, nullptr, yt.data());
        for (int64_t s = tab.nsteps - tab.top; s < tab.nsteps; ++s) {  // top rows: x_j ∘ (wᵀ · src rows)
          const int32_t* st = tab.steps + 4 * s;
          query_cols<T, kRT>(mt.data() + int64_t(st[1]) * tb, wb + int64_t(st[0]) * C, st[2], tb, u, C,
                             xt.data() + int64_t(st[3]) * tb, yt.data());
        }
      }
      if (op == nullptr) {
        T* yb = yp + (b * n + t0) * C;
        for (int64_t t = 0; t < valid; ++t)
          for (int64_t c = 0; c < C; ++c) yb[t * C + c] = yt[c * tb + t];
        continue;
      }
      T* ob = op + (b * n + t0) * (C - 1);
      const T* den = yt.data() + (C - 1) * tb;
      for (int64_t t = 0; t < valid; ++t) {
        if (!std::isnan(mine) && !(double(den[t]) >= mine)) mine = double(den[t]);  // NaN sticks
        for (int64_t c = 0; c + 1 < C; ++c) ob[t * (C - 1) + c] = yt[c * tb + t] / den[t];
      }
    }
    std::lock_guard<std::mutex> guard(lock);
    if (!std::isnan(worst) && !(mine >= worst)) worst = mine;
  }
  return worst;
}

at::Tensor key_summary(const at::Tensor& x, const at::Tensor& vals, double gain, const at::Tensor& steps,
                       int64_t degree, int64_t rank, int64_t block, bool ones) {
  check_inputs(x, vals, "vals");
  TORCH_CHECK(vals.size(0) == x.size(0) && vals.size(1) == x.size(1), "vals must be (B, m, C) with x (B, m, d)");
  const Table tab = make_table(steps, x.size(2), degree, rank);
  at::Tensor z = at::zeros({x.size(0), rank, vals.size(2) + (ones ? 1 : 0)}, x.options());
  if (x.scalar_type() == at::kFloat) key_summary_impl<float>(x, vals, gain, tab, block, ones, z);
  else key_summary_impl<double>(x, vals, gain, tab, block, ones, z);
  return z;
}

at::Tensor query_apply(const at::Tensor& x, const at::Tensor& w, double gain, const at::Tensor& steps,
                       int64_t degree, int64_t rank, int64_t block) {
  check_inputs(x, w, "w");
  TORCH_CHECK(w.size(0) == x.size(0) && w.size(1) == rank, "w must be (B, r, C) with x (B, n, d)");
  const Table tab = make_table(steps, x.size(2), degree, rank);
  at::Tensor y = at::empty({x.size(0), x.size(1), w.size(2)}, x.options());
  if (x.scalar_type() == at::kFloat) query_apply_impl<float>(x, w, gain, tab, block, y, nullptr);
  else query_apply_impl<double>(x, w, gain, tab, block, y, nullptr);
  return y;
}

std::tuple<at::Tensor, at::Tensor> query_normalised(const at::Tensor& x, const at::Tensor& w, double gain,
                                                    const at::Tensor& steps, int64_t degree, int64_t rank,
                                                    int64_t block) {
  check_inputs(x, w, "w");
  TORCH_CHECK(w.size(0) == x.size(0) && w.size(1) == rank && w.size(2) >= 2,
              "w must be (B, r, C) with x (B, n, d) and C ≥ 2 (values and the normaliser)");
  const Table tab = make_table(steps, x.size(2), degree, rank);
  at::Tensor y, out = at::empty({x.size(0), x.size(1), w.size(2) - 1}, x.options());
  double worst;
  if (x.scalar_type() == at::kFloat) worst = query_apply_impl<float>(x, w, gain, tab, block, y, &out);
  else worst = query_apply_impl<double>(x, w, gain, tab, block, y, &out);
  return {out, at::scalar_tensor(worst, x.options().dtype(at::kDouble))};
}

}  // namespace

TORCH_LIBRARY(ditbench_fused, lib) {
  lib.def("key_summary(Tensor x, Tensor vals, float gain, Tensor steps, int degree, int rank, int block, "
          "bool ones=False) -> Tensor");
  lib.def("query_apply(Tensor x, Tensor w, float gain, Tensor steps, int degree, int rank, int block) -> Tensor");
  lib.def("query_normalised(Tensor x, Tensor w, float gain, Tensor steps, int degree, int rank, int block) "
          "-> (Tensor, Tensor)");
}

TORCH_LIBRARY_IMPL(ditbench_fused, CPU, lib) {
  lib.impl("key_summary", &key_summary);
  lib.impl("query_apply", &query_apply);
  lib.impl("query_normalised", &query_normalised);
}
