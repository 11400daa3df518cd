// The element types of the ops' data. The training ops take the floating types; the inference
// form (shift_affine) also takes integer and bool data, for whole-pixel shifts, which only move
// values: such data moves as the unsigned integer of its width (int8, uint8 and bool share one
// kernel), bit for bit.
#pragma once
#include <ATen/Dispatch.h>
#include <c10/core/ScalarType.h>
#include <c10/util/Exception.h>

#include <cstdint>

namespace shiftzoo {

// Whether the ops move data of this type as integers (no arithmetic on values).
inline bool is_integer_data(at::ScalarType type) { return at::isIntegralType(type, /*includeBool=*/true); }

// Calls fn(T{}) with the type the kernels take for data of `type`: the floating type itself, or
// the unsigned integer as wide as an integer or bool element.
template <class Fn>
void with_data_type(at::ScalarType type, Fn&& fn) {
  if (!is_integer_data(type)) {
    AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, type, "shiftzoo", [&] { fn(scalar_t{}); });
    return;
  }
  switch (c10::elementSize(type)) {
    case 1: return fn(uint8_t{});
    case 2: return fn(uint16_t{});
    case 4: return fn(uint32_t{});
    case 8: return fn(uint64_t{});
    default: TORCH_CHECK(false, "shiftzoo: no kernel for ", type, " elements");
  }
}

}  // namespace shiftzoo
