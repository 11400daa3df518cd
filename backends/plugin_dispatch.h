// Turns the plugin names users pass into the compiled policies of plugins/. The lists come from
// the generated header (setup.py scans plugins/padding and plugins/interp), the one source of
// truth shared with the Python registry.
#pragma once
#include <c10/util/Exception.h>

#include <string>
#include <string_view>

#include "generated/builtin_plugins.h"
#include "taps.h"

namespace shiftzoo {

inline std::string builtin_padding_names() {
  std::string names;
#define SHIFTZOO_APPEND(NAME) names += names.empty() ? #NAME : ", " #NAME;
  SHIFTZOO_FOR_EACH_PADDING(SHIFTZOO_APPEND)
#undef SHIFTZOO_APPEND
  return names;
}

inline std::string builtin_interp_names() {
  std::string names;
#define SHIFTZOO_APPEND(NAME) names += names.empty() ? #NAME : ", " #NAME;
  SHIFTZOO_FOR_EACH_INTERP(SHIFTZOO_APPEND)
#undef SHIFTZOO_APPEND
  return names;
}

// Calls fn(policy) with the padding policy named `name`.
template <class Fn>
void with_padding(std::string_view name, Fn&& fn) {
#define SHIFTZOO_TRY(NAME)   \
  if (name == #NAME) {       \
    fn(padding::NAME{});     \
    return;                  \
  }
  SHIFTZOO_FOR_EACH_PADDING(SHIFTZOO_TRY)
#undef SHIFTZOO_TRY
  TORCH_CHECK_VALUE(false, "shiftzoo: unknown padding '", name, "'; expected one of: ",
                    builtin_padding_names());
}

// Calls fn(policy) with the interpolation policy named `name`.
template <class Fn>
void with_interp(std::string_view name, Fn&& fn) {
#define SHIFTZOO_TRY(NAME)   \
  if (name == #NAME) {       \
    fn(interp::NAME{});      \
    return;                  \
  }
  SHIFTZOO_FOR_EACH_INTERP(SHIFTZOO_TRY)
#undef SHIFTZOO_TRY
  TORCH_CHECK_VALUE(false, "shiftzoo: unknown interp '", name, "'; expected one of: ",
                    builtin_interp_names());
}

// The number of taps of the interpolation named `name`.
inline int interp_support(std::string_view name) {
  int support = 0;
  with_interp(name, [&](auto policy) { support = decltype(policy)::support; });
  return support;
}

}  // namespace shiftzoo
