// Working memory of one parallel task of the CPU kernels: one buffer per job, each growing to the
// largest size asked for and reused by all the task's planes (no allocation, zeroing or
// thread_local lookup per plane). A buffer holds one kind of thing, so no two jobs share one.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace shiftzoo::cpu {

class ScratchBuffer {
 public:
  // Room for n values of T (contents unspecified), 64-byte aligned.
  template <typename T>
  T* get(int64_t n) {
    static_assert(alignof(T) <= alignof(Block));
    const size_t blocks = (n * sizeof(T) + sizeof(Block) - 1) / sizeof(Block);
    if (blocks_.size() < blocks) blocks_.resize(blocks);
    return reinterpret_cast<T*>(blocks_.data());
  }

 private:
  struct alignas(64) Block {
    unsigned char bytes[64];
  };
  std::vector<Block> blocks_;
};

struct Scratch {
  // forward of a strided plane: the input rows one output row reads, and the output row
  ScratchBuffer source_rows, output_row;
  // separable forward (many taps): every input row filtered along W, and one output row's
  // slices combined along H
  ScratchBuffer along_w, along_h;
  // correlations of a strided plane: a grad_output row and an input row made contiguous
  ScratchBuffer grad_row, input_row;
  // correlations of a dense plane: the interior block of grad_output, edge columns zeroed
  ScratchBuffer masked_grad;
  // half types: this plane of grad_output, of the input and of the input gradient in float
  ScratchBuffer grad_float, input_float, input_grad_float;
};

}  // namespace shiftzoo::cpu
