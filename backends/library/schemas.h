// The schemas of the shiftzoo operators (schemas.cpp), declared into a library: the operator
// library shiftzoo itself, and the GPU kernels' host emulation (backends/cuda/host_emulation.cpp).
#pragma once
#include <torch/library.h>

namespace shiftzoo {
void define_schemas(torch::Library& m);
}  // namespace shiftzoo
