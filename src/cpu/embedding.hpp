// GPT-2 input embedding: token embedding plus learned position embedding.
#pragma once

namespace vkattn::cpu {

// out [T, C] = wte [V, C][tokens[t]] + wpe [P, C][positions[t]], tokens [T], positions [T].
// Indices are not checked here: the caller (the model) validates them against V and P with a useful message.
void embedding(int T, int C, const int* tokens, const int* positions, const float* wte, const float* wpe,
               float* out);

}  // namespace vkattn::cpu
