// Every header the CPU kernels (kernels/*.h) use besides each other. A per-instruction-set unit
// (isa_*.cpp) includes this before it switches the instruction set, so that library code (ATen,
// c10, the standard library) is compiled once, for the baseline, as in every other unit: only
// the kernels themselves get the wider instructions. A kernel header includes nothing else
// (tests/test_build_hygiene.py checks).
#pragma once
#include <ATen/OpMathType.h>
#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <optional>
#include <type_traits>
#include <vector>

#include "backends/core/channel_affine.h"
#include "backends/core/geometry.h"
#include "backends/cpu/convert.h"
#include "backends/cpu/kernel_table.h"
#include "backends/cpu/scratch.h"
#include "backends/cpu/tap_tables.h"
