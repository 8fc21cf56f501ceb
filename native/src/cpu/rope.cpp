// Rotary position embedding, rotate-half form.
//
// Frequencies follow transformers exactly (fp32 arithmetic, llama3 scaling): the angle of
// pair i is float(position) * inv_freq[i], rounded to fp32 as transformers does; cos and
// sin of that fp32 angle are then evaluated in double and rounded to fp32, so a rotation
// by -p is the exact inverse of one by p and large positions lose nothing beyond the
// fp32 angle itself. cos/sin are vectorised (AVX2, 4 doubles a lane group) because
// rotate() runs once per (token, head, view segment).
#include "rope.h"

#include <immintrin.h>

#include <cmath>
#include <string>

#include "../error.h"

namespace hw {

namespace {

// sin and cos of 4 doubles with |x| <= 2^30: Cody-Waite reduction by pi/2 with FMA, then
// Cephes' minimax polynomials on [-pi/4, pi/4]. Error ~1e-16, far below fp32 rounding.
inline void sincos4(__m256d x, __m256d* s_out, __m256d* c_out) {
  const __m256d two_over_pi = _mm256_set1_pd(0.63661977236758134308);
  const __m256d pio2_hi = _mm256_set1_pd(1.5707963267948966);     // nearest double to pi/2
  const __m256d pio2_lo = _mm256_set1_pd(6.123233995736766e-17);  // pi/2 - pio2_hi
  __m256d q = _mm256_round_pd(_mm256_mul_pd(x, two_over_pi), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256d r = _mm256_fnmadd_pd(q, pio2_hi, x);
  r = _mm256_fnmadd_pd(q, pio2_lo, r);
  const __m256d z = _mm256_mul_pd(r, r);

  __m256d ps = _mm256_set1_pd(1.58962301576546568060e-10);
  ps = _mm256_fmadd_pd(ps, z, _mm256_set1_pd(-2.50507477628578072866e-8));
  ps = _mm256_fmadd_pd(ps, z, _mm256_set1_pd(2.75573136213857245213e-6));
  ps = _mm256_fmadd_pd(ps, z, _mm256_set1_pd(-1.98412698295895385996e-4));
  ps = _mm256_fmadd_pd(ps, z, _mm256_set1_pd(8.33333333332211858878e-3));
  ps = _mm256_fmadd_pd(ps, z, _mm256_set1_pd(-1.66666666666666307295e-1));
  const __m256d sn = _mm256_fmadd_pd(_mm256_mul_pd(r, z), ps, r);

  __m256d pc = _mm256_set1_pd(-1.13585365213876817300e-11);
  pc = _mm256_fmadd_pd(pc, z, _mm256_set1_pd(2.08757008419747316778e-9));
  pc = _mm256_fmadd_pd(pc, z, _mm256_set1_pd(-2.75573141792967388112e-7));
  pc = _mm256_fmadd_pd(pc, z, _mm256_set1_pd(2.48015872888517045348e-5));
  pc = _mm256_fmadd_pd(pc, z, _mm256_set1_pd(-1.38888888888730564116e-3));
  pc = _mm256_fmadd_pd(pc, z, _mm256_set1_pd(4.16666666666665929218e-2));
  const __m256d cs =
      _mm256_fmadd_pd(_mm256_mul_pd(z, z), pc, _mm256_fnmadd_pd(_mm256_set1_pd(0.5), z, _mm256_set1_pd(1.0)));

  // Quadrant k = q mod 4: sin = [s, c, -s, -c][k], cos = [c, -s, -c, s][k].
  const __m256i k = _mm256_cvtepi32_epi64(_mm256_cvtpd_epi32(q));
  const __m256i one = _mm256_set1_epi64x(1), two = _mm256_set1_epi64x(2);
  const __m256d swap = _mm256_castsi256_pd(_mm256_cmpeq_epi64(_mm256_and_si256(k, one), one));
  const __m256d ssign = _mm256_castsi256_pd(_mm256_slli_epi64(_mm256_and_si256(k, two), 62));
  const __m256d csign = _mm256_castsi256_pd(_mm256_slli_epi64(_mm256_and_si256(_mm256_add_epi64(k, one), two), 62));
  *s_out = _mm256_xor_pd(_mm256_blendv_pd(sn, cs, swap), ssign);
  *c_out = _mm256_xor_pd(_mm256_blendv_pd(cs, sn, swap), csign);
}

}  // namespace

Rope::Rope(const ModelConfig& cfg) {
  head_dim_ = cfg.head_dim > 0 ? cfg.head_dim : (cfg.heads > 0 ? cfg.hidden / cfg.heads : 0);
  if (head_dim_ <= 0 || head_dim_ % 2 != 0)
    throw EngineError("rope: head_dim must be a positive even number, got " + std::to_string(head_dim_));
  if (!(cfg.rope_theta > 0.0f))
    throw EngineError("rope: rope_theta must be positive, got " + std::to_string(cfg.rope_theta));
  const int half = head_dim_ / 2;
  inv_freq_.resize(half);
  // transformers: 1.0 / (base ** (torch.arange(0, dim, 2).float() / dim)), all in fp32.
  for (int i = 0; i < half; ++i) {
    const float e = float(2 * i) / float(head_dim_);
    inv_freq_[i] = 1.0f / std::pow(cfg.rope_theta, e);
  }
  const RopeScaling& rs = cfg.rope_scaling;
  if (rs.llama3) {
    if (!(rs.factor > 0.0f) || !(rs.high_freq_factor > rs.low_freq_factor) || !(rs.low_freq_factor > 0.0f) ||
        rs.original_max_position <= 0)
      throw EngineError("rope: invalid llama3 rope_scaling (factor " + std::to_string(rs.factor) +
                        ", low_freq_factor " + std::to_string(rs.low_freq_factor) + ", high_freq_factor " +
                        std::to_string(rs.high_freq_factor) + ", original_max_position_embeddings " +
                        std::to_string(rs.original_max_position) + ")");
    // transformers' _compute_llama3_parameters, elementwise in fp32 (python scalars are
    // combined in double first, as Python does, then meet the fp32 tensor).
    const double old_ctx = double(rs.original_max_position);
    const float low_wavelen = float(old_ctx / double(rs.low_freq_factor));
    const float high_wavelen = float(old_ctx / double(rs.high_freq_factor));
    const float two_pi = float(6.283185307179586);  // float(2 * math.pi)
    const float denom = float(double(rs.high_freq_factor) - double(rs.low_freq_factor));
    for (int i = 0; i < half; ++i) {
      const float f = inv_freq_[i];
      const float wavelen = (1.0f / f) * two_pi;  // 2*pi / inv_freq (torch: reciprocal * scalar)
      const float low_scaled = f / rs.factor;
      if (wavelen < high_wavelen) continue;  // high frequency: kept
      if (wavelen > low_wavelen) {           // low frequency: divided by factor
        inv_freq_[i] = low_scaled;
        continue;
      }
      const float smooth = ((1.0f / wavelen) * float(old_ctx) - rs.low_freq_factor) / denom;
      inv_freq_[i] = (1.0f - smooth) * f / rs.factor + smooth * f;
    }
  }
}

void Rope::rotate(float* x, int position) const {
  rotate(x, x, position);
}

// cos and sin of the 8 angles position * inv[0..8), fp32 angles, evaluated in double.
static inline void cos_sin8(__m256 pv, const float* inv, __m256* c, __m256* s) {
  const __m256 ang = _mm256_mul_ps(pv, _mm256_loadu_ps(inv));  // fp32, like transformers
  __m256d s0, c0, s1, c1;
  sincos4(_mm256_cvtps_pd(_mm256_castps256_ps128(ang)), &s0, &c0);
  sincos4(_mm256_cvtps_pd(_mm256_extractf128_ps(ang, 1)), &s1, &c1);
  *s = _mm256_set_m128(_mm256_cvtpd_ps(s1), _mm256_cvtpd_ps(s0));
  *c = _mm256_set_m128(_mm256_cvtpd_ps(c1), _mm256_cvtpd_ps(c0));
}

// |angle| <= |position| * max inv_freq; inv_freq <= 1 without scaling, so positions up to
// 2^30 stay in the vector path's reduction range.
static inline bool vector_range(float pos, const float* inv) {
  return std::fabs(pos) * inv[0] < 1.0e9f;
}

void Rope::rotate(const float* src, float* dst, int position) const {
  const int half = head_dim_ / 2;
  const float* inv = inv_freq_.data();
  const float pos = float(position);
  int i = 0;
  if (vector_range(pos, inv)) {
    const __m256 pv = _mm256_set1_ps(pos);
    for (; i + 8 <= half; i += 8) {
      __m256 c, s;
      cos_sin8(pv, inv + i, &c, &s);
      const __m256 a = _mm256_loadu_ps(src + i), b = _mm256_loadu_ps(src + i + half);
      _mm256_storeu_ps(dst + i, _mm256_fmsub_ps(a, c, _mm256_mul_ps(b, s)));
      _mm256_storeu_ps(dst + i + half, _mm256_fmadd_ps(b, c, _mm256_mul_ps(a, s)));
    }
  }
  for (; i < half; ++i) {
    const float ang = pos * inv[i];
    const float c = float(std::cos(double(ang))), s = float(std::sin(double(ang)));
    const float a = src[i], b = src[i + half];
    dst[i] = a * c - b * s;
    dst[i + half] = b * c + a * s;
  }
}

void Rope::extend(RopeTable& t, int n) const {
  const int half = head_dim_ / 2;
  if (t.half != half) t = RopeTable{half, {}, {}};
  const int have = t.positions();
  if (n <= have) return;
  t.cos.resize(size_t(n) * half);
  t.sin.resize(size_t(n) * half);
  const float* inv = inv_freq_.data();
  for (int p = have; p < n; ++p) {
    float* c = t.cos.data() + size_t(p) * half;
    float* s = t.sin.data() + size_t(p) * half;
    const float pos = float(p);
    int i = 0;
    if (vector_range(pos, inv)) {
      const __m256 pv = _mm256_set1_ps(pos);
      for (; i + 8 <= half; i += 8) {
        __m256 cv, sv;
        cos_sin8(pv, inv + i, &cv, &sv);
        _mm256_storeu_ps(c + i, cv);
        _mm256_storeu_ps(s + i, sv);
      }
    }
    for (; i < half; ++i) {
      const float ang = pos * inv[i];
      c[i] = float(std::cos(double(ang)));
      s[i] = float(std::sin(double(ang)));
    }
  }
}

void rope_apply(const RopeTable& t, int p, const float* src, float* dst) {
  const int half = t.half;
  const float* c = t.cos_at(p);
  const float* s = t.sin_at(p);
  int i = 0;
  for (; i + 8 <= half; i += 8) {
    const __m256 cv = _mm256_loadu_ps(c + i), sv = _mm256_loadu_ps(s + i);
    const __m256 a = _mm256_loadu_ps(src + i), b = _mm256_loadu_ps(src + i + half);
    _mm256_storeu_ps(dst + i, _mm256_fmsub_ps(a, cv, _mm256_mul_ps(b, sv)));
    _mm256_storeu_ps(dst + i + half, _mm256_fmadd_ps(b, cv, _mm256_mul_ps(a, sv)));
  }
  for (; i < half; ++i) {
    const float a = src[i], b = src[i + half];
    dst[i] = a * c[i] - b * s[i];
    dst[i + half] = b * c[i] + a * s[i];
  }
}

}  // namespace hw
