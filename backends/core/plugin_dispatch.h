// From the plugin names users pass to the compiled policies of plugins/, and what a backend may
// ask of a policy. The lists come from the header setup.py generates from plugins/ (the one
// source of truth, shared with the Python registry through shiftzoo._C.builtin_plugins()).
#pragma once
#include <c10/util/Exception.h>

#include <string>
#include <string_view>
#include <type_traits>

#include "backends/generated/builtin_plugins.h"

namespace shiftzoo {

// The names of a list's policies, comma separated (for error messages).
template <class... Policies>
std::string plugin_names(PluginList<Policies...>) {
  std::string names;
  ((names += names.empty() ? "" : ", ", names += plugin_name<Policies>::value), ...);
  return names;
}

// Calls fn(Policy{}) for the policy of `list` named `name`; `kind` names the list in the error.
template <class... Policies, class Fn>
void with_plugin(PluginList<Policies...> list, std::string_view kind, std::string_view name, Fn&& fn) {
  const bool found = ((name == plugin_name<Policies>::value ? (fn(Policies{}), true) : false) || ...);
  TORCH_CHECK_VALUE(found, "shiftzoo: unknown ", kind, " '", name, "'; expected one of: ", plugin_names(list));
}

template <class Fn>
void with_padding(std::string_view name, Fn&& fn) {
  with_plugin(BuiltinPaddings{}, "padding", name, fn);
}

template <class Fn>
void with_interp(std::string_view name, Fn&& fn) {
  with_plugin(BuiltinInterps{}, "interp", name, fn);
}

// The number of taps of the interpolation named `name` (checks the name).
inline int interp_support(std::string_view name) {
  int support = 0;
  with_interp(name, [&](auto policy) { support = decltype(policy)::support; });
  return support;
}

// Whether every tap outside the axis reads zero under padding P (P::outside_is_zero; false for a
// policy that does not say so, and for runtime paddings): then the adjoint of a shift is the
// reversed in-range shift alone, with no padding term.
template <class P, class = void>
struct outside_is_zero : std::false_type {};
template <class P>
struct outside_is_zero<P, std::void_t<decltype(P::outside_is_zero)>> : std::bool_constant<P::outside_is_zero> {};

}  // namespace shiftzoo
