// Why a channels-last shift whose channels each move their own way (SSL, Active) is a gather
// per element, and what the vector alternatives cost: one output row (n, y) of a float32
// channels-last tensor where channel c reads pixel (y + dy_c, x + dx_c), shifts in [-2, 2]^2
// drawn at random (as the benchmark's SSL rows), interior pixels only (the library's edge
// handling is the same for every variant). Each variant is checked against the scalar gather,
// then timed single-threaded (best of 20) as a ratio to memcpy of the tensor.
//
//   g++ -O2 -march=native benchmarks/channels_last_gather.cpp -o /tmp/clg && /tmp/clg 8 256 28
//   (arguments: N C H, W = H, C a multiple of 16)
//
// Variants: scalar (what backends/cpu/channels_inner.inc does), AVX2 gather instructions, masked
// blends (per 8 channels, one load per distinct shift among them), masked stores, AVX-512 masked
// merges (with -mavx512f), 8x8 transposes through a ring of transposed rows. On the Ice Lake
// Xeon of the README (one thread), the scalar gather took 2.2-3.0x memcpy and every vector variant
// more (AVX-512 merges tied it once).
#include <immintrin.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <random>
#include <vector>

namespace {

constexpr int kReach = 2;                   // shifts in [-kReach, kReach] on both axes
constexpr int kSide = 2 * kReach + 1;       // distinct shifts per axis

struct Problem {
  int N, C, H, W;
  std::vector<float> in, out;
  std::vector<int> shift_class;  // [c]: (dy + kReach) * kSide + dx + kReach
  std::vector<int32_t> offset;   // [c]: from pixel (y, x) channel c to what it reads, in floats

  int dy(int c) const { return shift_class[c] / kSide - kReach; }
  int dx(int c) const { return shift_class[c] % kSide - kReach; }
  const float* in_row(int n, int y) const { return in.data() + (static_cast<size_t>(n) * H + y) * W * C; }
  float* out_row(int n, int y) { return out.data() + (static_cast<size_t>(n) * H + y) * W * C; }
  // Calls body(in_row, out_row) for every interior output row, pixels [kReach, W - kReach).
  template <class Body>
  void for_each_row(Body&& body) {
    for (int n = 0; n < N; ++n)
      for (int y = kReach; y < H - kReach; ++y) body(n, y, in_row(n, y), out_row(n, y));
  }
};

void scalar(Problem& p) {
  p.for_each_row([&](int, int, const float* in, float* out) {
    for (int x = kReach; x < p.W - kReach; ++x) {
      const float* src = in + static_cast<size_t>(x) * p.C;
      float* dst = out + static_cast<size_t>(x) * p.C;
      for (int c = 0; c < p.C; ++c) dst[c] = src[p.offset[c]];
    }
  });
}

void avx2_gather(Problem& p) {
  p.for_each_row([&](int, int, const float* in, float* out) {
    for (int x = kReach; x < p.W - kReach; ++x) {
      const float* src = in + static_cast<size_t>(x) * p.C;
      for (int c = 0; c < p.C; c += 8) {
        const __m256i idx = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p.offset.data() + c));
        _mm256_storeu_ps(out + static_cast<size_t>(x) * p.C + c, _mm256_i32gather_ps(src, idx, 4));
      }
    }
  });
}

// Per 8 channels, the distinct shifts among them: (offset of the shift's source pixel, lane mask).
struct Piece {
  int32_t source;
  int32_t lanes;  // bit l: lane l belongs to this shift
};
std::vector<std::vector<Piece>> pieces_per_vector(const Problem& p, int lanes) {
  std::vector<std::vector<Piece>> pieces(p.C / lanes);
  for (int v = 0; v < p.C / lanes; ++v)
    for (int k = 0; k < kSide * kSide; ++k) {
      int32_t mask = 0;
      for (int l = 0; l < lanes; ++l) mask |= (p.shift_class[v * lanes + l] == k) << l;
      const int32_t source = ((k / kSide - kReach) * p.W + k % kSide - kReach) * p.C + v * lanes;
      if (mask) pieces[v].push_back({source, mask});
    }
  return pieces;
}
__m256i lane_mask(int32_t lanes) {
  const __m256i bit = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
  return _mm256_cmpeq_epi32(_mm256_and_si256(_mm256_set1_epi32(lanes), bit), bit);
}

void masked_blend(Problem& p) {
  const auto pieces = pieces_per_vector(p, 8);
  struct Mask {
    __m256i bits;
  };
  std::vector<std::vector<Mask>> masks(pieces.size());
  for (size_t v = 0; v < pieces.size(); ++v)
    for (const Piece& piece : pieces[v]) masks[v].push_back({lane_mask(piece.lanes)});
  p.for_each_row([&](int, int, const float* in, float* out) {
    for (int x = kReach; x < p.W - kReach; ++x) {
      const float* src = in + static_cast<size_t>(x) * p.C;
      for (size_t v = 0; v < pieces.size(); ++v) {
        __m256 acc = _mm256_setzero_ps();
        for (size_t i = 0; i < pieces[v].size(); ++i)
          acc = _mm256_blendv_ps(acc, _mm256_loadu_ps(src + pieces[v][i].source), _mm256_castsi256_ps(masks[v][i].bits));
        _mm256_storeu_ps(out + static_cast<size_t>(x) * p.C + v * 8, acc);
      }
    }
  });
}

void masked_store(Problem& p) {
  const auto pieces = pieces_per_vector(p, 8);
  p.for_each_row([&](int, int, const float* in, float* out) {
    for (int x = kReach; x < p.W - kReach; ++x) {
      const float* src = in + static_cast<size_t>(x) * p.C;
      float* dst = out + static_cast<size_t>(x) * p.C;
      for (size_t v = 0; v < pieces.size(); ++v)
        for (const Piece& piece : pieces[v])
          _mm256_maskstore_ps(dst + v * 8, lane_mask(piece.lanes), _mm256_loadu_ps(src + piece.source));
    }
  });
}

#ifdef __AVX512F__
void avx512_merge(Problem& p) {
  const auto pieces = pieces_per_vector(p, 16);
  p.for_each_row([&](int, int, const float* in, float* out) {
    for (int x = kReach; x < p.W - kReach; ++x) {
      const float* src = in + static_cast<size_t>(x) * p.C;
      for (size_t v = 0; v < pieces.size(); ++v) {
        __m512 acc = _mm512_setzero_ps();
        for (const Piece& piece : pieces[v])
          acc = _mm512_mask_loadu_ps(acc, static_cast<__mmask16>(piece.lanes), src + piece.source);
        _mm512_storeu_ps(out + static_cast<size_t>(x) * p.C + v * 16, acc);
      }
    }
  });
}
#endif

// r[i] (8 floats each) transposed in place: r[j][i] <- r[i][j].
void transpose8(__m256 r[8]) {
  __m256 t[8], s[8];
  for (int i = 0; i < 8; i += 2) {
    t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
  }
  for (int i = 0; i < 8; i += 4) {
    s[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
    s[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xEE);
    s[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
    s[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
  }
  for (int i = 0; i < 4; ++i) {
    r[i] = _mm256_permute2f128_ps(s[i], s[i + 4], 0x20);
    r[i + 4] = _mm256_permute2f128_ps(s[i], s[i + 4], 0x31);
  }
}

// Input rows transposed (channel-major, kReach zero columns each side) into a ring, then each
// output row built 8 pixels x 8 channels at a time from the channels' shifted planar rows.
void transposed_rows(Problem& p) {
  const int pitch = p.W + 2 * kReach, slots = 2 * kReach + 1;
  std::vector<float> ring(static_cast<size_t>(slots) * p.C * pitch, 0.0f);
  std::vector<int> held(slots, -1);  // the (item, row) each slot holds, n * H + row
  std::vector<const float*> channel(p.C);
  auto planar = [&](int slot) { return ring.data() + static_cast<size_t>(slot) * p.C * pitch; };
  p.for_each_row([&](int n, int y, const float*, float* out) {
    for (int sy = y - kReach; sy <= y + kReach; ++sy) {
      if (held[sy % slots] == n * p.H + sy) continue;
      held[sy % slots] = n * p.H + sy;
      const float* row = p.in_row(n, sy);
      float* dst = planar(sy % slots);
      for (int x = 0; x + 8 <= p.W; x += 8)
        for (int c0 = 0; c0 < p.C; c0 += 8) {
          __m256 r[8];
          for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(row + static_cast<size_t>(x + i) * p.C + c0);
          transpose8(r);
          for (int c = 0; c < 8; ++c) _mm256_storeu_ps(dst + static_cast<size_t>(c0 + c) * pitch + kReach + x, r[c]);
        }
      for (int x = p.W / 8 * 8; x < p.W; ++x)
        for (int c = 0; c < p.C; ++c) dst[static_cast<size_t>(c) * pitch + kReach + x] = row[static_cast<size_t>(x) * p.C + c];
    }
    for (int c = 0; c < p.C; ++c)
      channel[c] = planar((y + p.dy(c)) % slots) + static_cast<size_t>(c) * pitch + kReach + p.dx(c);
    for (int x = kReach; x + 8 <= p.W - kReach; x += 8)
      for (int c0 = 0; c0 < p.C; c0 += 8) {
        __m256 r[8];
        for (int c = 0; c < 8; ++c) r[c] = _mm256_loadu_ps(channel[c0 + c] + x);
        transpose8(r);
        for (int i = 0; i < 8; ++i) _mm256_storeu_ps(out + static_cast<size_t>(x + i) * p.C + c0, r[i]);
      }
    for (int x = kReach + (p.W - 2 * kReach) / 8 * 8; x < p.W - kReach; ++x)
      for (int c = 0; c < p.C; ++c) out[static_cast<size_t>(x) * p.C + c] = channel[c][x];
  });
}

double best_ms(const std::function<void()>& f) {
  double best = 1e30;
  for (int round = 0; round < 20; ++round) {
    const auto start = std::chrono::steady_clock::now();
    f();
    best = std::min(best, std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
  }
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4 || std::atoi(argv[2]) % 16 != 0) {
    std::fprintf(stderr, "usage: %s N C H (C a multiple of 16)\n", argv[0]);
    return 2;
  }
  Problem p{std::atoi(argv[1]), std::atoi(argv[2]), std::atoi(argv[3]), std::atoi(argv[3]), {}, {}, {}, {}};
  const size_t total = static_cast<size_t>(p.N) * p.H * p.W * p.C;
  p.in.resize(total);
  p.out.assign(total, 0.0f);
  for (size_t i = 0; i < total; ++i) p.in[i] = static_cast<float>(i % 1000003);
  std::mt19937 rng(1);
  for (int c = 0; c < p.C; ++c) {
    p.shift_class.push_back(static_cast<int>(rng() % (kSide * kSide)));
    p.offset.push_back((p.dy(c) * p.W + p.dx(c)) * p.C + c);
  }
  std::vector<float> copy(total);
  const double copy_ms = best_ms([&] { std::memcpy(copy.data(), p.in.data(), total * sizeof(float)); });
  scalar(p);
  const std::vector<float> expected = p.out;
  std::printf("N=%d C=%d H=W=%d, float32 channels-last, memcpy %.3f ms\n", p.N, p.C, p.H, copy_ms);
  std::vector<std::pair<const char*, void (*)(Problem&)>> variants = {
      {"scalar gather", scalar},           {"AVX2 gather", avx2_gather},          {"masked blends", masked_blend},
      {"masked stores", masked_store},     {"transposed rows", transposed_rows},
#ifdef __AVX512F__
      {"AVX-512 masked merges", avx512_merge},
#endif
  };
  for (const auto& [name, run] : variants) {
    std::fill(p.out.begin(), p.out.end(), 0.0f);
    run(p);
    const bool same = p.out == expected;
    const double ms = best_ms([&] { run(p); });
    std::printf("  %-22s %8.3f ms  %5.2fx memcpy%s\n", name, ms, ms / copy_ms, same ? "" : "  WRONG RESULT");
  }
}
